"""After the charge: the order, or the units back; and settling what a dead process left.

``Settler`` turns a provider's answer into an outcome, for the request that charged and for
any process that takes an attempt over (its owner died, the provider did not answer in
time, the buyer authenticated later, a provider webhook): a charge becomes an order (or a
refund when SQL has no units for it), a failure gives the held units back and answers the
key with that failure. ``run`` is each worker's loop: a heartbeat, then the attempts of dead
or stuck owners (``Attempts.orphans``) and those the buyer never authenticated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import order_writer, orders
from checkout.attempts import FINAL, Attempt, Attempts, HeldLine
from checkout.error_codes import IDEMPOTENCY_KEY_REUSED
from checkout.errors import Conflict, OutOfStock, Unavailable
from checkout.events import Event, OrderUpdate
from checkout.inventory import Inventory, hold_key, idem_key
from checkout.models import AttemptState
from checkout.orders import LineSpec
from checkout.payments import Charge, PaymentError, PaymentProvider, PaymentState
from checkout.results import OrderResult
from checkout.stock_events import StockEvents
from checkout.validation import failure
from core.aio import cancel_requested

log = logging.getLogger("liveshop.checkout")

SETTLE_INTERVAL_S = 1.0
INTERRUPTED = "payment_interrupted"
UNRECORDED_AFTER_S = 5.0
EXPIRED = "payment_expired"


class Settler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        inventory: Inventory,
        writer: order_writer.OrderWriter,
        payments: PaymentProvider,
        attempts: Attempts,
        stock_events: StockEvents,
        *,
        payment_hold_s: int,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.inventory = inventory
        self.writer = writer
        self.payments = payments
        self.attempts = attempts
        self.stock_events = stock_events
        self.payment_hold_s = payment_hold_s
        self._background: set[asyncio.Task[None]] = set()
        self._pass = asyncio.Lock()

    # -- outcomes ------------------------------------------------------------------------

    async def charged(self, attempt: Attempt, charge: Charge) -> OrderResult:
        """The provider took the money: write the order, or refund when it cannot stand."""
        draft = order_writer.OrderDraft(
            attempt.show_id,
            attempt.buyer_id,
            attempt.idempotency_key,
            attempt.currency,
            tuple(attempt.lines),
            charge.ref,
        )
        try:
            result = await self.writer.write(draft)
        except order_writer.DuplicateOrder:
            return await self._existing(attempt, charge)
        except OutOfStock as exc:
            # Redis promised units SQL does not have: SQL wins, Redis follows it.
            await self._refund(attempt, charge)
            await self.attempts.move(
                attempt.id, frozenset({AttemptState.CHARGING}), AttemptState.REFUNDED,
                reason=exc.code,
            )  # fmt: skip
            await self.release_all(attempt.show_id, list(attempt.held), exc.code)
            for variant_id in exc.fields:
                await self.inventory.resync(variant_id)
            await self._publish_failed(attempt, exc.code)
            raise
        # (Unavailable: the order store is down. The attempt stays charging: a settler
        # writes the order once SQL is back, and the buyer's retry finds it.)
        # The order stands in SQL: the buyer is answered now. Telling Redis the units are
        # sold, the attempt's state and the live channel's news follow without holding the
        # answer up (a drop's winners waited ~40 ms on them). Were they lost, a settler
        # finds the order and finishes them.
        update = OrderUpdate(
            attempt.show_id,
            attempt.buyer_id,
            "confirmed",
            order_id=result.order_id,
            idempotency_key=attempt.idempotency_key,
            total_minor=result.total_minor,
            currency=result.currency,
        )
        self._in_background(self._after_order(attempt, result.order_id, update))
        return result

    async def _existing(self, attempt: Attempt, charge: Charge) -> OrderResult:
        """The key already made an order: this charge's (another process wrote it first),
        or, for an order older than its attempt, another charge: then refund this one."""
        async with self.sessions() as session:
            order = await orders.find_order(session, attempt.buyer_id, attempt.idempotency_key)
        if order is None:
            raise Unavailable(
                "order_store_unavailable", "the order could not be written, try again"
            )
        if order.payment_ref != charge.ref:
            await self._refund(attempt, charge)
        if order.show_id != attempt.show_id or not orders.same_lines(order, attempt.lines):
            await self.release_all(attempt.show_id, list(attempt.held), IDEMPOTENCY_KEY_REUSED)
            raise failure(IDEMPOTENCY_KEY_REUSED)
        await self._ordered(attempt, order.id)
        return orders.order_result(order, replayed=True)

    async def failed(self, attempt: Attempt, reason: str) -> bool:
        """Nothing was charged: the attempt fails, the held units go back, the key answers
        ``reason`` from now on. Does nothing when someone else settled it first."""
        sources = frozenset(
            {AttemptState.OPEN, AttemptState.CHARGING, AttemptState.REQUIRES_ACTION}
        )
        if await self.attempts.move(attempt.id, sources, AttemptState.FAILED, reason=reason):
            await self.release_all(attempt.show_id, list(attempt.held), reason)
            await self._publish_failed(attempt, reason)
            return True
        return False

    async def _publish_failed(self, attempt: Attempt, reason: str) -> None:
        await self.stock_events.publish(
            OrderUpdate(
                attempt.show_id,
                attempt.buyer_id,
                "failed",
                idempotency_key=attempt.idempotency_key,
                reason=reason,
            )
        )

    async def _after_order(self, attempt: Attempt, order_id: str, update: Event) -> None:
        await self._ordered(attempt, order_id)
        await self.stock_events.publish(update)

    async def _ordered(self, attempt: Attempt, order_id: str) -> None:
        """The order stands: the holds become sold in Redis, the attempt is ordered."""
        for h in attempt.held:
            await self._sold(h, order_id)
        try:
            await self.attempts.mark_ordered(attempt.id)
        except Exception as exc:  # the order stands; a settler marks the attempt later
            log.warning("attempt %s not marked ordered: %r", attempt.id, exc)

    async def _sold(self, h: HeldLine, order_id: str) -> None:
        """Tell Redis the units are sold; the order already stands in SQL whatever happens.

        Only a hold still there is committed: one that is gone (its time ran out, or Redis
        lost it) gave its units back, and Redis follows SQL's stock again (resync)."""
        try:
            if await self.redis.exists(hold_key(h.line.variant_id, h.hold_id)):
                outcome = await self.inventory.commit(
                    h.line.variant_id,
                    h.hold_id,
                    quantity=h.line.quantity,
                    epoch=h.epoch,
                    order_id=order_id,
                    idem=h.idem,
                )
                if outcome == "resync":
                    await self.inventory.resync(h.line.variant_id)
                return
            if h.idem:
                await self.redis.hset(h.idem, mapping={"state": "done", "order": order_id})
            await self.inventory.resync(h.line.variant_id)
        except (Unavailable, RedisError):
            log.warning("commit not recorded in redis; the next rebuild follows SQL")

    async def answer_key(self, held: list[HeldLine], attempt: Attempt) -> None:
        """Write a settled attempt's outcome to the Redis keys of a later request's holds."""
        for h in held:
            if not h.idem:
                continue
            try:
                if attempt.state is AttemptState.ORDERED and attempt.order_id:
                    await self.redis.hset(
                        h.idem, mapping={"state": "done", "order": attempt.order_id}
                    )
                elif attempt.state in FINAL:
                    await self.redis.hset(
                        h.idem, mapping={"state": "failed", "reason": attempt.reason or INTERRUPTED}
                    )
            except RedisError:
                log.warning("idempotency key not answered in redis")

    async def _refund(self, attempt: Attempt, charge: Charge) -> None:
        if charge.ref:
            await self.payments.refund(
                charge.ref,
                amount_minor=attempt.amount_minor,
                idempotency_key=f"unordered:{attempt.id}",
            )

    async def release_all(self, show_id: str, held: list[HeldLine], reason: str) -> None:
        for h in held:
            try:
                avail, back, _ = await self.inventory.release(
                    h.line.variant_id, h.hold_id, idem=h.idem, reason=reason
                )
            except Unavailable:
                continue
            self.stock_events.moved(show_id, h.line.variant_id, avail)
            if back:
                await self.stock_events.back_in_stock(show_id, h.line.variant_id, avail)

    # -- taking over -----------------------------------------------------------------------

    async def take_over(self, attempt: Attempt, *, reason: str = INTERRUPTED) -> None:
        """Settle an attempt its owner cannot finish: the order if SQL has it; otherwise
        the provider is told to stop it, and says whether it had charged."""
        if not await self.attempts.claim(attempt):
            return
        attempt = await self.attempts.by_id(attempt.id) or attempt
        async with self.sessions() as session:
            order = await orders.find_order(session, attempt.buyer_id, attempt.idempotency_key)
        if order is not None:
            await self._ordered(attempt, order.id)
            return
        charge = await self.payments.cancel(attempt.id, attempt.provider_ref)
        if charge.ok:
            if attempt.state is AttemptState.OPEN:  # (its id was recorded after all)
                await self.attempts.move(
                    attempt.id, frozenset({AttemptState.OPEN}), AttemptState.CHARGING,
                    provider_ref=charge.ref,
                )  # fmt: skip
            if attempt.state is AttemptState.REQUIRES_ACTION:
                await self.attempts.move(
                    attempt.id, frozenset({AttemptState.REQUIRES_ACTION}), AttemptState.CHARGING
                )
            try:
                await self.charged(attempt, charge)
            except (OutOfStock, Unavailable) as exc:
                log.info("settled attempt %s: %s", attempt.id, exc.code)
            return
        if charge.state is PaymentState.PENDING:
            return  # the provider is still at it: the next pass asks again
        await self.failed(
            attempt,
            charge.reason if charge.state is PaymentState.FAILED and charge.reason else reason,
        )

    async def complete(self, attempt: Attempt, charge: Charge) -> OrderResult:
        """The buyer authenticated (or a webhook says it charged): the order, by whoever
        claims the attempt first; the others answer what it became."""
        if not await self.attempts.claim(attempt):
            raise _in_progress()
        moved = await self.attempts.move(
            attempt.id, frozenset({AttemptState.REQUIRES_ACTION}), AttemptState.CHARGING,
            provider_ref=charge.ref or attempt.provider_ref,
        )  # fmt: skip
        if not moved:
            raise _in_progress()
        return await self.charged(attempt, charge)

    async def provider_said(self, ref: str, *, succeeded: bool) -> None:
        """A provider's event about a payment: an attempt waiting for the buyer is settled
        by it (the others are their owner's, or the settler's, already)."""
        attempt = await self.attempts.by_ref(ref)
        if attempt is None or attempt.state is not AttemptState.REQUIRES_ACTION:
            return
        charge = await self.payments.lookup(attempt.id, ref)  # (the event's word, checked)
        try:
            if charge.ok and succeeded:
                await self.complete(attempt, charge)
            elif charge.state is PaymentState.FAILED and not succeeded:
                await self.failed(attempt, charge.reason or "payment_declined")
        except (Conflict, OutOfStock, Unavailable) as exc:
            log.info("payment event for attempt %s: %s", attempt.id, exc.code)

    async def unrecorded_holds(self) -> None:
        """Paying holds of a one-tap buy older than ``UNRECORDED_AFTER_S`` whose request has
        no attempt in SQL: its process died between the reserve and the attempt's row.
        A failed attempt is written in its place (the unique key: if the owner was only
        slow, its own row loses and it follows this outcome), the units go back and the
        key answers ``payment_interrupted``. (A cart's paying holds are not looked at: a
        cart checkout that died before its row keeps its units until its hold runs out.)"""
        ttl_ms = self.payment_hold_s * 1000
        before = await self.inventory.server_ms() - int(UNRECORDED_AFTER_S * 1000)
        for variant_id in await self.inventory.known_variants():
            for hold_id in await self.inventory.paying_holds(variant_id, before, ttl_ms):
                if not hold_id.startswith("b:"):
                    continue
                _, buyer_id, key = hold_id.split(":", 2)
                if await self.attempts.get(buyer_id, key) is not None:
                    continue
                show_id = str(await self.redis.hget(hold_key(variant_id, hold_id), "show") or "")
                ikey = idem_key(variant_id, buyer_id, key)
                if await self.attempts.tombstone(buyer_id=buyer_id, key=key, show_id=show_id):
                    held = HeldLine(LineSpec(variant_id, 0, 0), hold_id, "", ikey)
                    await self.release_all(show_id, [held], INTERRUPTED)

    async def settle_once(self) -> None:
        """One pass (a pass already running in this process is waited for first)."""
        async with self._pass:
            await self._settle_once()

    async def _settle_once(self) -> None:
        stuck_after = self.payments.timeout_s + 10.0
        await self.unrecorded_holds()
        for attempt in await self.attempts.orphans(stuck_after_s=stuck_after):
            try:
                await self.take_over(attempt)
            except (PaymentError, Unavailable) as exc:
                log.warning("attempt %s not settled yet: %s", attempt.id, exc)
        # The buyer never authenticated: the payment hold runs out (less a margin).
        for attempt in await self.attempts.awaiting_buyer(
            older_than_s=max(1.0, self.payment_hold_s - 5.0)
        ):
            try:
                await self.take_over(attempt, reason=EXPIRED)
            except (PaymentError, Unavailable) as exc:
                log.warning("attempt %s not settled yet: %s", attempt.id, exc)

    async def run(self) -> None:
        """Heartbeat and settle every ``SETTLE_INTERVAL_S`` until cancelled."""
        while not cancel_requested():
            try:
                await self.attempts.beat()
                await self.settle_once()
            except Exception as exc:
                log.warning("settling skipped: %r", exc)
            await asyncio.sleep(SETTLE_INTERVAL_S)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="checkout-after-order")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settled(self, timeout_s: float = 5.0) -> None:
        """Wait for the work answered orders left behind (Redis commits, their events)."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout_s)


def _in_progress() -> Conflict:
    return Conflict(
        "request_in_progress",
        "a request with this key is still in progress, try again",
        extra={"retry": True},
    )
