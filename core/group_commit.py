"""Small SQL writes, group-committed on an event loop and engine of their own.

A drop's winners each write a few small rows before and after paying (the payment
attempt, the provider's id, the test provider's ledger). Awaited statement by statement on
the app's event loop, with a hundred taps to answer per turn, each statement waited a turn
(a winner's answer went from ~50 ms to 1.3-2.3 s in ``liveshop bench drop``); and each
transaction took SQLite's single write lock on its own. Here the writes that arrive
together share one transaction, run on a thread's loop: one hop from the app's loop per
write, one commit per batch.

A job is ``fn(session) -> T``: it must only write what it would write alone, and may run
again (when the shared transaction fails, every job of the batch runs once more in a
transaction of its own, so that one bad job fails only itself).

The hot writes are bulk operations (``run_bulk``): a ``BulkOp`` takes the items of every
caller in the batch and writes them in one statement (a multi-row INSERT, an UPDATE ...
CASE), answering one result per item. Statement by statement, a batch of a hundred took
over a second on the writer's thread while the app's loop held the GIL (each statement
waits for it several times); one statement per operation takes a few milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.thread_loop import ThreadLoop

log = logging.getLogger("liveshop.db")
T = TypeVar("T")

Job = Callable[[AsyncSession], Awaitable[Any]]
BulkOp = Callable[[AsyncSession, list[Any]], Awaitable[list[Any]]]
"""Writes every item in one go; one result per item, in order."""


class GroupCommit:
    def __init__(self, url: str, max_batch: int = 200) -> None:
        self._thread = ThreadLoop("group-commit", url)
        self.max_batch = max_batch
        self.batches = 0
        self._pending: list[tuple[tuple[BulkOp, Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def beside(cls, sessions: async_sessionmaker[AsyncSession]) -> GroupCommit:
        """One for the database behind ``sessions`` (its own engine and connections)."""
        engine = sessions.kw["bind"]
        return cls(engine.url.render_as_string(hide_password=False))

    async def run(self, job: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``job`` in the next shared transaction; its result once committed."""
        return await self.run_bulk(_single, job)  # type: ignore[no-any-return]

    async def run_bulk(self, op: BulkOp, item: Any) -> Any:
        """Hand ``item`` to ``op`` with the other items of the next shared transaction;
        its result once committed."""
        if self._closed:
            raise RuntimeError("the group writer is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(((op, item), future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="group-commit")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = [(j, f) for j, f in self._pending[: self.max_batch] if not f.done()]
            del self._pending[: self.max_batch]
            if not batch:
                continue
            try:
                outcomes = await self._thread.run(self._write([j for j, _ in batch]))
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(RuntimeError(f"group write abandoned: {exc!r}"))
                raise
            self.batches += 1
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, _Failed):
                    future.set_exception(outcome.error)
                else:
                    future.set_result(outcome)

    async def _write(self, jobs: list[tuple[BulkOp, Any]]) -> list[Any]:
        sessions = self._thread.sessions()
        try:
            async with sessions.begin() as session:
                return await _apply(session, jobs)
        except Exception as exc:
            if len(jobs) == 1:
                return [_Failed(exc)]
            log.info("group write of %d failed, one by one: %r", len(jobs), exc)
        out: list[Any] = []
        for job in jobs:
            try:
                async with sessions.begin() as session:
                    out.extend(await _apply(session, [job]))
            except Exception as exc:
                out.append(_Failed(exc))
        return out

    async def close(self, timeout_s: float = 5.0) -> None:
        self._closed = True
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task], timeout=timeout_s)
            self._task.cancel()
        for _, future in self._pending:
            if not future.done():
                future.set_exception(RuntimeError("the group writer is closed"))
        self._pending.clear()
        await self._thread.close(timeout_s)


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


async def _single(session: AsyncSession, jobs: list[Any]) -> list[Any]:
    return [await job(session) for job in jobs]


async def _apply(session: AsyncSession, jobs: list[tuple[BulkOp, Any]]) -> list[Any]:
    """Each operation once with its items (in order of first appearance); the results in
    the jobs' order."""
    by_op: dict[BulkOp, list[int]] = {}
    for index, (op, _) in enumerate(jobs):
        by_op.setdefault(op, []).append(index)
    out: list[Any] = [None] * len(jobs)
    for op, indexes in by_op.items():
        results = await op(session, [jobs[i][1] for i in indexes])
        for i, result in zip(indexes, results, strict=True):
            out[i] = result
    return out


async def run_or_alone(
    group: GroupCommit | None,
    sessions: async_sessionmaker[AsyncSession],
    job: Callable[[AsyncSession], Awaitable[T]],
) -> T:
    """``job`` in the group's next shared transaction, or (no group) in its own."""
    if group is not None:
        return await group.run(job)
    async with sessions.begin() as session:
        return await job(session)


async def bulk_or_alone(
    group: GroupCommit | None,
    sessions: async_sessionmaker[AsyncSession],
    op: BulkOp,
    item: Any,
) -> Any:
    """``op`` on ``item`` with the others of the group's next shared transaction, or (no
    group) alone in its own."""
    if group is not None:
        return await group.run_bulk(op, item)
    async with sessions.begin() as session:
        [result] = await op(session, [item])
        return result
