"""Background-loop helpers shared by checkout and live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def cancel_requested() -> bool:
    """True once the running task was asked to stop.

    A loop checks this as well as catching CancelledError: on Python 3.11 a cancellation
    that lands while redis-py finishes a read inside ``asyncio.wait_for`` can be swallowed,
    and the loop would then run on (seen as a shutdown that never ended in the tests).
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop_tasks(tasks: list[asyncio.Task[None]], timeout_s: float = 3.0) -> None:
    """Cancel ``tasks`` and wait for them, at most ``timeout_s``: shutdown never hangs."""
    for task in tasks:
        task.cancel()
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=timeout_s)
    for task in tasks:
        if task.done() and not task.cancelled():
            with contextlib.suppress(Exception):
                task.result()


class SingleFlight:
    """One run per key at a time: callers that come while it runs wait for that run.

    The first taps of a drop all miss the same cache or find the same variant unloaded at
    once; without this each of them did the read or the load itself, one after another.
    """

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[Any]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(work())
            self._running[key] = running

            def done(_: object) -> None:
                if self._running.get(key) is running:
                    del self._running[key]

            running.add_done_callback(done)
        result: T = await asyncio.shield(running)  # (a caller that leaves stops no one)
        return result

    def current(self, key: str) -> asyncio.Future[Any] | None:
        """The run under way for ``key``, if any."""
        return self._running.get(key)

    def forget(self, key: str) -> None:
        """The next caller starts a new run (the one under way may predate a change)."""
        self._running.pop(key, None)
