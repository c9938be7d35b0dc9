"""Background-loop helpers shared by checkout and live."""

from __future__ import annotations

import asyncio
import contextlib


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
