"""A webhook receiver for ``liveshop bench drop --webhooks``: a plain asyncio HTTP server
on 127.0.0.1 in the load generator's process that answers 204 and keeps what came (each
message id, and the order ids of ``order.paid``), so the drop reports whether every order
reached the shop's systems."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class Sink:
    port: int = 0
    requests: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    message_ids: set[str] = field(default_factory=set)
    orders_paid: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def keep(self, message_id: str, body: bytes) -> None:
        self.requests += 1
        event = json.loads(body)
        if message_id not in self.message_ids:
            self.by_type[event["type"]] += 1
        self.message_ids.add(message_id)
        if event["type"] == "order.paid":
            self.orders_paid.add(event["data"]["order_id"])


@contextlib.asynccontextmanager
async def webhook_sink() -> AsyncIterator[Sink]:
    sink = Sink()
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                fields = dict(line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
                body = await reader.readexactly(int(fields.get("content-length", "0")))
                sink.keep(fields.get("webhook-id", "").strip(), body)
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        if handlers:
            await asyncio.wait(list(handlers), timeout=5)
        await server.wait_closed()
