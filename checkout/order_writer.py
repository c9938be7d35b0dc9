"""The SQL guard's writer: an order row and the conditional stock decrements commit together,
group-committed (``OrderWriter``) on an event loop and engine of its own."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from checkout import webhook_events
from checkout.errors import OutOfStock, Unavailable
from checkout.models import Order, OrderLine, OrderStatus, Variant
from checkout.orders import LineSpec, line_views
from checkout.results import OrderResult
from core.db import new_id, utcnow
from core.thread_loop import ThreadLoop

log = logging.getLogger("liveshop.checkout")


class DuplicateOrder(Exception):
    """The buyer's idempotency key already made an order (Redis had forgotten it)."""


@dataclass(frozen=True)
class OrderDraft:
    show_id: str
    buyer_id: str
    idempotency_key: str
    currency: str
    lines: tuple[LineSpec, ...]
    payment_ref: str | None


class OrderWriter:
    """Group commit: the orders that arrive while a transaction runs share the next one.

    A drop sends its winners at once; one transaction per order made them queue on the
    database's write lock (SQLite's single writer above all). Inside the shared
    transaction each order stays all-or-nothing on its own: its row goes in unless the key
    already made one (``ON CONFLICT DO NOTHING``), then each line takes its units with a
    conditional decrement, and a short line undoes that order's decrements and row. One
    refused order never fails the others: when a shared transaction fails, the orders it
    did commit (a lost reply) are read back by id and each other order is written on its
    own. Writes run in a task of their own, so a caller that goes away cannot cut a
    transaction in half.

    The transactions run on an event loop of their own, in a thread, with an engine of
    their own: during a drop the app's loop has a hundred taps to answer per turn, and a
    batch that awaited each statement on it waited a turn per statement (~0.3 s a batch
    measured here); on its own loop a batch takes a few milliseconds.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], max_batch: int = 200) -> None:
        engine = sessions.kw["bind"]
        # (the same database and driver; pool options of the app's engine are not copied)
        url = engine.url.render_as_string(hide_password=False)
        self._thread = ThreadLoop("checkout-order-writer", url)
        self.max_batch = max_batch
        self.batches = 0
        self._pending: list[tuple[OrderDraft, asyncio.Future[OrderResult]]] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def engine(self) -> AsyncEngine | None:
        """The writer's own engine (on its thread), once started."""
        return self._thread.engine

    async def start(self) -> None:
        """Start the writer's thread and open its connection before the first order."""
        await self._thread.run(self._warm())

    async def _warm(self) -> None:
        async with self._thread.sessions()() as session:
            await session.execute(select(1))

    async def write(self, draft: OrderDraft) -> OrderResult:
        """The confirmed order, once committed; raises OutOfStock or DuplicateOrder."""
        if self._closed:
            raise _unavailable()
        future: asyncio.Future[OrderResult] = asyncio.get_running_loop().create_future()
        self._pending.append((draft, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="checkout-order-writer")
        return await future

    async def close(self, timeout_s: float = 5.0) -> None:
        """Let the running batch finish (bounded); refuse what was still waiting."""
        self._closed = True
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task], timeout=timeout_s)
            self._task.cancel()
        for _, future in self._pending:
            if not future.done():
                future.set_exception(_unavailable())
        self._pending.clear()
        await self._thread.close(timeout_s)

    async def _run(self) -> None:
        while self._pending:
            batch = [(d, f) for d, f in self._pending[: self.max_batch] if not f.done()]
            del self._pending[: self.max_batch]
            if not batch:
                continue
            made = [_Made(draft) for draft, _ in batch]
            outcomes: list[OrderResult | Exception | None]
            try:
                outcomes = list(await self._thread.run(self._write(made)))
            except BaseException:
                # Cancelled (close() ran out of time): this batch's outcome is unknown.
                log.error("order batch of %d abandoned at shutdown", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(_unavailable())
                raise
            self.batches += 1
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if outcome is None:
                    future.set_exception(_unavailable())
                elif isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    async def _write(self, made: list[_Made]) -> list[OrderResult | Exception | None]:
        """The whole batch in a few statements. If that fails, each order in a transaction
        of its own, so that one order short of SQL stock or refused by the database fails
        only itself (None: unavailable). After a failure other than a short, the orders
        the batch's transaction did commit (a lost reply) are first found by id.

        One transaction an order also keeps the lock order: each locks its variants in id
        order, whereas a transaction running several orders one after another would lock
        theirs in order of orders, and two such (two worker processes) could deadlock."""
        sessions = self._thread.sessions()
        try:
            async with sessions.begin() as session:
                return list(await _write_together(session, made))
        except _Short:
            committed: set[str] = set()  # nothing of the batch's transaction stands
        except Exception as exc:
            log.warning("order batch of %d failed, writing one by one: %r", len(made), exc)
            committed = await _committed_ids(sessions, made)
        outcomes: list[OrderResult | Exception | None] = []
        for one in made:
            if one.order_id in committed:
                outcomes.append(one.result())
                continue
            try:
                async with sessions.begin() as session:
                    outcomes.append(await _write_one(session, one))
            except OutOfStock as short:  # its transaction rolled back: nothing of it stands
                outcomes.append(short)
            except Exception as exc:
                log.warning("order not written: %r", exc)
                outcomes.append(None)
        return outcomes


async def _committed_ids(sessions: async_sessionmaker[AsyncSession], made: list[_Made]) -> set[str]:
    try:
        async with sessions() as session:
            ids = [m.order_id for m in made]
            return set((await session.scalars(select(Order.id).where(Order.id.in_(ids)))).all())
    except Exception as exc:  # the database is gone: nothing can be said to stand
        log.warning("could not read back an order batch: %r", exc)
        return set()


class _Short(Exception):
    """SQL stock cannot cover the whole batch (Redis promised more than SQL holds)."""


class _Made:
    """An order's row, its id and time fixed once whichever path writes it."""

    def __init__(self, draft: OrderDraft) -> None:
        self.draft = draft
        self.order_id = new_id("ord")
        self.created = utcnow()
        self.lines = sorted(draft.lines, key=lambda line: line.variant_id)
        self.total = sum(line.quantity * line.unit_price_minor for line in self.lines)

    def row(self) -> dict[str, Any]:
        d = self.draft
        return {
            "id": self.order_id,
            "show_id": d.show_id,
            "buyer_id": d.buyer_id,
            "idempotency_key": d.idempotency_key,
            "currency": d.currency,
            "total_minor": self.total,
            "status": OrderStatus.PAID,
            "payment_ref": d.payment_ref,
            "created_at": self.created,
        }

    def line_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "order_id": self.order_id,
                "variant_id": line.variant_id,
                "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor,
            }
            for line in self.lines
        ]

    def result(self) -> OrderResult:
        d = self.draft
        return OrderResult(
            order_id=self.order_id,
            show_id=d.show_id,
            buyer_id=d.buyer_id,
            status=OrderStatus.PAID.value,
            total_minor=self.total,
            currency=d.currency,
            idempotency_key=d.idempotency_key,
            lines=line_views(self.lines),
            created_at=self.created,
        )


def _unavailable() -> Unavailable:
    return Unavailable("order_store_unavailable", "the order could not be written, try again")


def _insert(session: AsyncSession, table: Any) -> Any:
    """INSERT with ``on_conflict_do_nothing`` in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def _insert_orders(session: AsyncSession, made: list[_Made]) -> set[str]:
    """Insert the order rows; the ids of those whose key had not made an order yet.
    Rows go in key order: two batches inserting the same keys wait on each other in the
    unique index in one order, and cannot deadlock."""
    rows = sorted((m.row() for m in made), key=lambda r: (r["buyer_id"], r["idempotency_key"]))
    stmt = (
        _insert(session, Order)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["buyer_id", "idempotency_key"])
        .returning(Order.id)
    )
    return set((await session.scalars(stmt)).all())


async def _take(session: AsyncSession, variant_id: str, units: int) -> bool:
    """The conditional decrement: take ``units`` if SQL stock still has them."""
    result = await session.execute(
        update(Variant)
        .where(Variant.id == variant_id, Variant.stock >= units)
        .values(stock=Variant.stock - units)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def _write_together(
    session: AsyncSession, made: list[_Made]
) -> list[OrderResult | Exception]:
    """One insert of the orders, one decrement per variant, one insert of the lines."""
    inserted = await _insert_orders(session, made)
    new = [m for m in made if m.order_id in inserted]
    demand: dict[str, int] = {}
    for m in new:
        for line in m.lines:
            demand[line.variant_id] = demand.get(line.variant_id, 0) + line.quantity
    for variant_id in sorted(demand):
        if not await _take(session, variant_id, demand[variant_id]):
            raise _Short(variant_id)
    if new:
        await session.execute(insert(OrderLine), [row for m in new for row in m.line_rows()])
    await _outbox(session, new)
    return [
        m.result() if m.order_id in inserted else DuplicateOrder(m.draft.idempotency_key)
        for m in made
    ]


async def _write_one(session: AsyncSession, m: _Made) -> OrderResult | Exception:
    """One order in its own transaction: all its lines, or OutOfStock raised (naming every
    short line), which rolls the transaction back."""
    if not await _insert_orders(session, [m]):
        return DuplicateOrder(m.draft.idempotency_key)
    left: dict[str, int] = {}
    for line in m.lines:
        if not await _take(session, line.variant_id, line.quantity):
            # (an unknown variant counts as none left)
            stock = await session.scalar(select(Variant.stock).where(Variant.id == line.variant_id))
            left[line.variant_id] = int(stock or 0)
    if left:
        raise OutOfStock(
            "out_of_stock",
            "not enough units for " + ", ".join(sorted(left)),
            fields={variant_id: f"{n} available" for variant_id, n in left.items()},
            extra={"available": left},
        )
    await session.execute(insert(OrderLine), m.line_rows())
    await _outbox(session, [m])
    return m.result()


async def _outbox(session: AsyncSession, made: list[_Made]) -> None:
    """The webhooks of the orders just written (``order.paid``, ``product.sold_out``), in
    their transaction: a few statements a batch, whatever its size (``webhook_events``)."""
    await webhook_events.orders_paid(session, [m.result() for m in made])
