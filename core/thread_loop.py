"""An event loop in a thread of its own, with a database engine made and used on it.

The group-committed writers (``checkout/order_writer.py``, ``core/group_commit.py``) run
their transactions here: on the app's loop, busy with a hundred requests per turn during a
drop, each awaited statement waited a turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.db import make_engine

T = TypeVar("T")


class ThreadLoop:
    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self._url = url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine | None:
        """The thread's engine, once its first session was asked for."""
        return self._engine

    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The thread's own sessions (made on, and only used on, the thread's loop; the
        same database and driver, a small pool of its own)."""
        if self._sessions is None:
            self._engine = make_engine(self._url, pool_size=2, max_overflow=2)
            self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        return self._sessions

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the thread's loop (started on first use); its result here."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name=self.name, daemon=True
            )
            self._thread.start()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def close(self, timeout_s: float = 5.0) -> None:
        """Dispose of the engine on its loop, then stop the loop and its thread (bounded)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        if self._engine is not None:
            dispose = asyncio.run_coroutine_threadsafe(self._engine.dispose(), loop)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(dispose), timeout_s)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, timeout_s)
        if not thread.is_alive():
            loop.close()
