"""What happens to an order after the buy: fulfil, cancel, refund. All their SQL is here.

The moves themselves are ``checkout/order_states.py``'s table; every transaction that
makes one calls ``_emit`` once, where the order's outbox event is written.

Each move starts by taking the order's row: a write that changes nothing
(``UPDATE orders SET updated_at = updated_at``), which is a row lock on PostgreSQL and the
write lock on SQLite, so two moves of one order run one after the other and each sees
the other's result. A repeat of a move the order has already made (a second fulfil of a
fulfilled order, a second cancel of a cancelled one, a whole refund of a refunded one)
answers the order as it is and changes nothing: never a second refund.

Refunds and crashes. The provider's own idempotency keys are not trusted (localstripe
ignores them), so a refund is made safe by its SQL row, in three steps:

1. intent: in one transaction with the order's row taken, an ``order_refunds`` row is
   written ``pending`` with its amount, its number ``n`` and the provider key
   ``refund:{order_id}:{n}``, claimed by this request (``claimed_at``). While one is
   pending, no other refund, cancel or fulfil of the order is started.
2. the provider is asked (``payments.refund``) outside any transaction.
3. outcome: the row becomes ``succeeded`` and, in the same transaction, the order's
   ``refunded_minor`` and state follow (a cancel's units go back to SQL stock here too);
   or ``failed`` when the provider refused (nothing was given back).

A crash or a lost answer between 2 and 3 leaves the row ``pending``: the record of the
refund is never lost. The next move of the order (any request, any process) first
finishes it, once its claim is released (an error this process saw) or older than
``REFUND_CLAIM_S`` (a process that died): it asks the provider again with the same amount
and key, never with a new row, so the refund is recorded once. Asking again gives
nothing back twice: a refund of all that was left (a cancel, a whole refund) hits a
payment that is already wholly refunded, which the port answers as a no-op; a partial
refund relies on the provider answering a key it has seen without a second refund
(the built-in provider keeps its refunds by key; a provider adapter whose server ignores
idempotency keys must look the key up among the payment's refunds itself).

Cancel: the whole amount not yet refunded goes back (a refund row marked ``cancels``);
when it succeeds the order becomes ``cancelled`` and ``variants.stock`` gets every unit
back in that same transaction; then Redis follows SQL (``Inventory.resync``) and the live
channel hears the stock (``StockEvents``). Were Redis down then, the next rebuild follows
SQL: SQL is the truth, as for a buy.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from checkout import webhook_events
from checkout.error_codes import IDEMPOTENCY_KEY_REUSED
from checkout.errors import (
    CheckoutError,
    Conflict,
    IdempotencyError,
    InvalidInput,
    NotFound,
    Unavailable,
)
from checkout.inventory import Inventory
from checkout.models import (
    REASON_MAX_CHARS,
    Order,
    OrderHistory,
    OrderLine,
    OrderRefund,
    RefundState,
    Variant,
)
from checkout.order_states import ORDER_TRANSITIONS, REFUND_TRANSITIONS, OrderStatus
from checkout.orders import line_views
from checkout.payments import PaymentError, PaymentProvider
from checkout.results import OrderDetail, OrderStep, RefundView
from checkout.stock_events import StockEvents
from checkout.validation import check_key
from core.db import utcnow

log = logging.getLogger("liveshop.checkout")

REFUND_CLAIM_S = 60.0
"""A pending refund claimed by a request is taken over by another after this long (the
first one's process died between asking the provider and recording the answer)."""

ORDER_FULFILLED = "order.fulfilled"
ORDER_CANCELLED = "order.cancelled"
ORDER_REFUNDED = "order.refunded"


async def _emit(
    session: AsyncSession, event_type: str, order: Order, reason: str | None = None
) -> None:
    """Where ``order.fulfilled``, ``order.cancelled`` and ``order.refunded`` outbox events
    are written: called once in each move's transaction, after the order's row changed, so
    that the event commits with the move or not at all. A partial refund is an
    ``order.refunded`` too (``refunded`` says how much is back so far)."""
    await webhook_events.order_changed(
        session, event_type, order, refunded_minor=order.refunded_minor, reason=reason
    )


REFUND_LAST_RESORT_S = 30.0


class RefundRefused(CheckoutError):
    """The provider refused the refund (nothing was given back)."""

    default_status = 502


@dataclass(frozen=True)
class _Pending:
    """A claimed refund row, to send to the provider outside any transaction."""

    refund_id: str
    order_id: str
    payment_ref: str | None
    amount_minor: int
    idempotency_key: str


class OrderActions:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        payments: PaymentProvider,
        inventory: Inventory,
        stock_events: StockEvents,
    ) -> None:
        self.sessions = sessions
        self.payments = payments
        self.inventory = inventory
        self.stock_events = stock_events

    # -- reads -----------------------------------------------------------------------------

    async def show_of(self, order_id: str) -> str:
        """The order's show (who may act on it); NotFound ``order_not_found``."""
        async with self.sessions() as session:
            show_id = await session.scalar(select(Order.show_id).where(Order.id == order_id))
        if show_id is None:
            raise _not_found(order_id)
        return show_id

    async def detail(self, order_id: str) -> OrderDetail:
        async with self.sessions() as session:
            order = await _read(session, order_id)
            refunds = await session.scalars(
                select(OrderRefund)
                .where(OrderRefund.order_id == order_id)
                .order_by(OrderRefund.seq)
            )
            steps = await session.scalars(
                select(OrderHistory)
                .where(OrderHistory.order_id == order_id)
                .order_by(OrderHistory.id)
            )
            return _detail(order, list(refunds.all()), list(steps.all()))

    async def of_show(self, show_id: str, status: OrderStatus | None) -> list[OrderDetail]:
        """The show's orders (of one status, or all), oldest first, without their history."""
        query = (
            select(Order)
            .where(Order.show_id == show_id)
            .options(selectinload(Order.lines))
            .order_by(Order.created_at, Order.id)
        )
        if status is not None:
            query = query.where(Order.status == status)
        async with self.sessions() as session:
            return [_detail(o, None, None) for o in (await session.scalars(query)).all()]

    # -- moves -----------------------------------------------------------------------------

    async def fulfil(self, order_id: str, actor: str) -> OrderDetail:
        """paid -> fulfilled (a fulfilled order answers as it is)."""
        await self._finish_pending(order_id)
        async with self.sessions.begin() as session:
            order = await _take(session, order_id)
            await _refuse_if_pending(session, order_id)
            if order.status is not OrderStatus.FULFILLED:
                before = order.status
                order.status = ORDER_TRANSITIONS.check(before, OrderStatus.FULFILLED)
                order.fulfilled_at = order.updated_at = utcnow()
                _step(session, order, "fulfil", before, actor)
                await _emit(session, ORDER_FULFILLED, order)
        return await self.detail(order_id)

    async def cancel(self, order_id: str, actor: str, reason: str | None) -> OrderDetail:
        """paid -> cancelled: what is left of the payment goes back, the units go on sale."""
        reason = _check_reason(reason)
        await self._finish_pending(order_id)
        async with self.sessions.begin() as session:
            order = await _take(session, order_id)
            await _refuse_if_pending(session, order_id)
            if order.status is OrderStatus.CANCELLED:
                return await self._answer(session, order_id)
            ORDER_TRANSITIONS.check(order.status, OrderStatus.CANCELLED)
            pending = await _intend(
                session, order, order.total_minor - order.refunded_minor, actor, reason,
                cancels=True, request_key=None,
            )  # fmt: skip
        await self._send(pending)
        return await self.detail(order_id)

    async def refund(
        self,
        order_id: str,
        actor: str,
        amount_minor: int | None,
        reason: str | None,
        request_key: str | None = None,
    ) -> OrderDetail:
        """Give back ``amount_minor`` (None: all that is left). A partial refund keeps the
        state; the one that reaches the total makes the order ``refunded``. A request key
        already used for this order answers the order as it is (its refund is not made
        again)."""
        reason = _check_reason(reason)
        if request_key is not None:
            request_key = check_key(request_key)
        await self._finish_pending(order_id)
        async with self.sessions.begin() as session:
            order = await _take(session, order_id)
            if request_key is not None:
                earlier = await session.scalar(
                    select(OrderRefund).where(
                        OrderRefund.order_id == order_id, OrderRefund.request_key == request_key
                    )
                )
                if earlier is not None:
                    return await self._replay(session, earlier, amount_minor)
            await _refuse_if_pending(session, order_id)
            left = order.total_minor - order.refunded_minor
            if order.status is OrderStatus.REFUNDED and amount_minor is None:
                return await self._answer(session, order_id)
            ORDER_TRANSITIONS.check(order.status, OrderStatus.REFUNDED)
            amount = left if amount_minor is None else _check_amount(amount_minor, left)
            pending = await _intend(
                session, order, amount, actor, reason, cancels=False, request_key=request_key
            )
        await self._send(pending)
        return await self.detail(order_id)

    # -- the refund's three steps ----------------------------------------------------------

    async def _answer(self, session: AsyncSession, order_id: str) -> OrderDetail:
        """The order as it is, from inside a transaction that changed nothing."""
        refunds = await session.scalars(
            select(OrderRefund).where(OrderRefund.order_id == order_id).order_by(OrderRefund.seq)
        )
        steps = await session.scalars(
            select(OrderHistory).where(OrderHistory.order_id == order_id).order_by(OrderHistory.id)
        )
        return _detail(await _read(session, order_id), list(refunds.all()), list(steps.all()))

    async def _replay(
        self, session: AsyncSession, earlier: OrderRefund, amount_minor: int | None
    ) -> OrderDetail:
        if amount_minor is not None and amount_minor != earlier.amount_minor:
            raise IdempotencyError(
                IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used for a refund of another amount",
                fields={"Idempotency-Key": "used for another amount"},
            )
        if earlier.state is RefundState.PENDING:
            raise _in_progress()
        if earlier.state is RefundState.FAILED:
            raise _refused(earlier.failure or "refund_refused")
        return await self._answer(session, earlier.order_id)

    async def _finish_pending(self, order_id: str) -> None:
        """A refund left pending by a request that failed or died is finished first."""
        async with self.sessions.begin() as session:
            await _take(session, order_id)
            row = await _pending_row(session, order_id)
            if row is None:
                return
            now = utcnow()
            if row.claimed_at is not None and row.claimed_at > now - timedelta(
                seconds=REFUND_CLAIM_S
            ):
                raise _in_progress()
            log.warning("finishing refund %s of order %s left pending", row.id, order_id)
            row.claimed_at = now
            ref = await session.scalar(select(Order.payment_ref).where(Order.id == order_id))
            pending = _Pending(row.id, order_id, ref, row.amount_minor, row.idempotency_key)
        await self._send(pending)

    async def _send(self, pending: _Pending) -> None:
        """Ask the provider, then record its answer (steps 2 and 3)."""
        if pending.amount_minor > 0:
            try:
                if pending.payment_ref is None:
                    raise PaymentError("payment_not_refundable", "the order has no payment")
                # The provider bounds its own calls (``timeout_s``); this is the last
                # resort only: cut short, a refund's SQL write (the test provider's ledger)
                # looked like no answer under load (a flaky test at 0.3 s).
                async with asyncio.timeout(self.payments.timeout_s + REFUND_LAST_RESORT_S):
                    await self.payments.refund(
                        pending.payment_ref,
                        amount_minor=pending.amount_minor,
                        idempotency_key=pending.idempotency_key,
                    )
            except PaymentError as exc:
                await self._failed(pending, exc.code)
                raise _refused(exc.code) from exc
            except Exception as exc:  # no answer: it may or may not have refunded
                log.warning("refund %s got no answer: %r", pending.refund_id, exc)
                await self._unclaim(pending)
                raise Unavailable(
                    "refund_unavailable",
                    "the payment provider did not answer; the refund is recorded and the "
                    "next request for this order completes it",
                ) from exc
        try:
            restocked = await self._succeeded(pending)
        except SQLAlchemyError as exc:  # refunded, not recorded: resumed after the claim
            log.warning("refund %s done but not recorded: %r", pending.refund_id, exc)
            raise Unavailable(
                "order_store_unavailable", "the refund could not be recorded, try again"
            ) from exc
        if restocked is not None:
            await self._follow_stock(*restocked)

    async def _succeeded(self, pending: _Pending) -> tuple[str, list[str]] | None:
        """Record the refund and move the order; a cancel's (show, variants) restocked."""
        restocked: tuple[str, list[str]] | None = None
        async with self.sessions.begin() as session:
            order = await _take(session, pending.order_id)
            row = await session.get(OrderRefund, pending.refund_id, populate_existing=True)
            if row is None or row.state is not RefundState.PENDING:
                return None  # recorded by another request already
            now = utcnow()
            row.state = REFUND_TRANSITIONS.check(row.state, RefundState.SUCCEEDED)
            row.completed_at, row.claimed_at = now, None
            before = order.status
            order.refunded_minor += row.amount_minor
            order.updated_at = now
            if row.cancels:
                order.status = ORDER_TRANSITIONS.check(before, OrderStatus.CANCELLED)
                order.cancelled_at = now
                restocked = (order.show_id, await _restock(session, order.id))
                _step(session, order, "cancel", before, row.actor, row.amount_minor, row.reason)
                await _emit(session, ORDER_CANCELLED, order, row.reason)
            else:
                if order.refunded_minor == order.total_minor:
                    order.status = ORDER_TRANSITIONS.check(before, OrderStatus.REFUNDED)
                    order.refunded_at = now
                _step(session, order, "refund", before, row.actor, row.amount_minor, row.reason)
                await _emit(session, ORDER_REFUNDED, order, row.reason)
        return restocked

    async def _failed(self, pending: _Pending, code: str) -> None:
        async with self.sessions.begin() as session:
            row = await session.get(OrderRefund, pending.refund_id, populate_existing=True)
            if row is None or row.state is not RefundState.PENDING:
                return
            row.state = REFUND_TRANSITIONS.check(row.state, RefundState.FAILED)
            row.failure = code[:64]
            row.completed_at, row.claimed_at = utcnow(), None

    async def _unclaim(self, pending: _Pending) -> None:
        """Leave the refund pending for the next request to finish at once."""
        try:
            async with self.sessions.begin() as session:
                await session.execute(
                    update(OrderRefund)
                    .where(OrderRefund.id == pending.refund_id)
                    .values(claimed_at=None)
                )
        except SQLAlchemyError as exc:  # then it is taken over once its claim is old
            log.warning("refund %s stays claimed: %r", pending.refund_id, exc)

    async def _follow_stock(self, show_id: str, variant_ids: list[str]) -> None:
        """Redis follows SQL stock after a cancel, and the live channel hears it."""
        for variant_id in variant_ids:
            try:
                before = (await self.inventory.available([variant_id]))[variant_id]
                await self.inventory.resync(variant_id)
                after = (await self.inventory.available([variant_id]))[variant_id]
            except (Unavailable, RedisError, NotFound) as exc:
                log.warning("cancelled units of %s not shown in redis yet: %r", variant_id, exc)
                continue
            self.stock_events.moved(show_id, variant_id, after)
            if before == 0 and after > 0:
                await self.stock_events.back_in_stock(show_id, variant_id, after)


# -- SQL -------------------------------------------------------------------------------


async def _take(session: AsyncSession, order_id: str) -> Order:
    """Take the order's row for this transaction (a write that changes nothing), then read
    it as it is now; NotFound ``order_not_found``."""
    taken = await session.execute(
        update(Order).where(Order.id == order_id).values(updated_at=Order.updated_at)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise _not_found(order_id)
    return await _read(session, order_id)


async def _read(session: AsyncSession, order_id: str) -> Order:
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines))
        .execution_options(populate_existing=True)
    )
    if order is None:
        raise _not_found(order_id)
    return order


async def _pending_row(session: AsyncSession, order_id: str) -> OrderRefund | None:
    return await session.scalar(
        select(OrderRefund)
        .where(OrderRefund.order_id == order_id, OrderRefund.state == RefundState.PENDING)
        .execution_options(populate_existing=True)
    )


async def _refuse_if_pending(session: AsyncSession, order_id: str) -> None:
    if await _pending_row(session, order_id) is not None:
        raise _in_progress()


async def _intend(
    session: AsyncSession,
    order: Order,
    amount: int,
    actor: str,
    reason: str | None,
    *,
    cancels: bool,
    request_key: str | None,
) -> _Pending:
    """Step 1: the refund's row, pending and claimed, before the provider is asked."""
    seq = 1 + int(
        await session.scalar(
            select(func.count(OrderRefund.id)).where(OrderRefund.order_id == order.id)
        )
        or 0
    )
    key = f"refund:{order.id}:{seq}"
    row = OrderRefund(
        order_id=order.id,
        seq=seq,
        amount_minor=amount,
        state=RefundState.PENDING,
        cancels=cancels,
        idempotency_key=key,
        request_key=request_key,
        reason=reason,
        actor=actor,
        claimed_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return _Pending(row.id, order.id, order.payment_ref, amount, key)


async def _restock(session: AsyncSession, order_id: str) -> list[str]:
    """Every unit of the order back in SQL stock; the variants, in id order (lock order)."""
    lines = (
        await session.execute(
            select(OrderLine.variant_id, func.sum(OrderLine.quantity))
            .where(OrderLine.order_id == order_id)
            .group_by(OrderLine.variant_id)
            .order_by(OrderLine.variant_id)
        )
    ).all()
    for variant_id, quantity in lines:
        await session.execute(
            update(Variant).where(Variant.id == variant_id).values(stock=Variant.stock + quantity)
        )
    return [variant_id for variant_id, _ in lines]


def _step(
    session: AsyncSession,
    order: Order,
    action: str,
    before: OrderStatus,
    actor: str,
    amount: int | None = None,
    reason: str | None = None,
) -> None:
    session.add(
        OrderHistory(
            order_id=order.id,
            action=action,
            from_status=before,
            to_status=order.status,
            amount_minor=amount,
            reason=reason,
            actor=actor,
            at=order.updated_at or utcnow(),
        )
    )


# -- input, errors, answers ---------------------------------------------------------------


def _check_reason(reason: object) -> str | None:
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason) > REASON_MAX_CHARS:
        raise InvalidInput(
            "invalid_reason",
            f"a reason is at most {REASON_MAX_CHARS} characters",
            fields={"reason": f"at most {REASON_MAX_CHARS} characters"},
        )
    return reason.strip() or None


def _check_amount(amount: object, left: int) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= left:
        raise InvalidInput(
            "invalid_refund_amount",
            f"a refund of this order is 1 to {left} minor units",
            fields={"amount_minor": f"1-{left}"},
            extra={"refundable_minor": left},
        )
    return amount


def _not_found(order_id: str) -> NotFound:
    return NotFound("order_not_found", f"no order {order_id!r}", fields={"order_id": "unknown"})


def _in_progress() -> Conflict:
    return Conflict(
        "refund_in_progress",
        "a refund of this order is under way; retry in a moment",
        fields={"order_id": "refund under way"},
    )


def _refused(provider_code: str) -> RefundRefused:
    return RefundRefused(
        "refund_refused",
        f"the payment provider refused the refund ({provider_code}); nothing was refunded",
        fields={"provider": provider_code},
    )


def _detail(
    order: Order, refunds: list[OrderRefund] | None, steps: list[OrderHistory] | None
) -> OrderDetail:
    return OrderDetail(
        order_id=order.id,
        show_id=order.show_id,
        buyer_id=order.buyer_id,
        status=order.status.value,
        total_minor=order.total_minor,
        refunded_minor=order.refunded_minor,
        currency=order.currency,
        payment_ref=order.payment_ref,
        lines=line_views(order.lines),
        created_at=order.created_at,
        updated_at=order.updated_at,
        fulfilled_at=order.fulfilled_at,
        cancelled_at=order.cancelled_at,
        refunded_at=order.refunded_at,
        refunds=None if refunds is None else tuple(_refund_view(r) for r in refunds),
        history=None if steps is None else tuple(_step_view(s) for s in steps),
    )


def _refund_view(r: OrderRefund) -> RefundView:
    return RefundView(
        refund_id=r.id,
        amount_minor=r.amount_minor,
        state=r.state.value,
        cancels=r.cancels,
        reason=r.reason,
        failure=r.failure,
        created_at=r.created_at,
        completed_at=r.completed_at,
    )


def _step_view(s: OrderHistory) -> OrderStep:
    return OrderStep(
        action=s.action,
        from_status=s.from_status.value,
        to_status=s.to_status.value,
        amount_minor=s.amount_minor,
        reason=s.reason,
        actor=s.actor,
        at=s.at,
    )
