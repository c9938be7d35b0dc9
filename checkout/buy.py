"""One-tap buy and paying: reserve, charge, write the order, answer, then tell Redis.

The hot path of a tap is one Lua call (``Inventory.reserve``); a refusal never touches SQL.
A tap that got units pays, then writes the order and the conditional stock decrement in one
SQL transaction (shared with the orders written at the same moment: ``order_writer.OrderWriter``),
answers, and then, in the background, tells Redis the units are sold and sends the order
event (``settled`` waits for that work). A repeated key waits for its first request and
answers its outcome; a failed payment or order gives the held units back.
The cart's checkout pays through the same ``pay_and_order``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import order_writer, orders
from checkout.error_codes import IDEMPOTENCY_KEY_REUSED
from checkout.errors import Conflict, OutOfStock, Unavailable
from checkout.events import Event, OrderUpdate
from checkout.holds import HoldState
from checkout.inventory import Inventory, Replay, idem_key
from checkout.lookups import Lookups
from checkout.orders import LineSpec
from checkout.payments import Charge, PaymentProvider
from checkout.results import OrderResult
from checkout.stock_events import StockEvents
from checkout.validation import check_key, check_method, check_quantity, failure

log = logging.getLogger("liveshop.checkout")

REPLAY_MARGIN_S = 5.0

Poll = Callable[[], Awaitable[tuple[str, str]]]
"""Reads a first request's (state, reason) again while a repeat waits on it."""


@dataclass(frozen=True)
class HeldLine:
    """A hold in payment that will become one order line."""

    line: LineSpec
    hold_id: str
    epoch: str
    idem: str = ""


class Buying:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        inventory: Inventory,
        writer: order_writer.OrderWriter,
        payments: PaymentProvider,
        lookups: Lookups,
        stock_events: StockEvents,
        *,
        payment_hold_s: int,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.inventory = inventory
        self.writer = writer
        self.payments = payments
        self.lookups = lookups
        self.stock_events = stock_events
        self.payment_hold_s = payment_hold_s
        self._background: set[asyncio.Task[None]] = set()

    async def buy_now(
        self,
        show_id: str,
        buyer_id: str,
        variant_id: str,
        quantity: int,
        idempotency_key: str,
        payment_method: str,
    ) -> OrderResult:
        check_key(idempotency_key)
        check_quantity(quantity)
        check_method(payment_method)
        info = await self.lookups.variant(show_id, variant_id)
        hold_id = f"b:{buyer_id}:{idempotency_key}"
        fingerprint = f"{show_id}|{variant_id}|{quantity}"
        ikey = idem_key(variant_id, buyer_id, idempotency_key)
        res = await self.inventory.reserve(
            variant_id,
            hold_id,
            buyer_id=buyer_id,
            show_id=show_id,
            quantity=quantity,
            ttl_ms=self.payment_hold_s * 1000,
            state=HoldState.PAYING,
            idempotency=(idempotency_key, fingerprint),
        )
        if isinstance(res, Replay):
            return await self.replay(res, buyer_id, idempotency_key, self._idem_poll(ikey))
        await self.stock_events.after_reserve(info, res)
        price = res.deal_price_minor if res.deal_price_minor is not None else info.price_minor
        held = HeldLine(LineSpec(variant_id, quantity, price), hold_id, res.epoch, ikey)
        return await self.pay_and_order(
            show_id, buyer_id, idempotency_key, payment_method, [held], info.currency
        )

    def _idem_poll(self, ikey: str) -> Poll:
        async def poll() -> tuple[str, str]:
            values = await self.redis.hmget(ikey, ["state", "reason"])
            return str(values[0] or "gone"), str(values[1] or "")

        return poll

    async def replay(self, res: Replay, buyer_id: str, key: str, poll: Poll) -> OrderResult:
        """Answer a repeated key: wait for the first request, then give its outcome."""
        deadline = time.monotonic() + self.payments.timeout_s + REPLAY_MARGIN_S
        state, reason = res.state, res.reason
        while state == "pending" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            state, reason = await poll()
        if state == "failed":
            raise failure(reason)
        async with self.sessions() as session:
            order = await orders.find_order(session, buyer_id, key)
        if order is not None:
            return orders.order_result(order, replayed=True)
        raise Conflict(
            "request_in_progress",
            "a request with this key is still in progress, try again",
            extra={"retry": True},
        )

    async def _charge(self, total: int, currency: str, method: str, key: str) -> Charge:
        try:
            return await asyncio.wait_for(
                self.payments.charge(
                    amount_minor=total,
                    currency=currency,
                    payment_method=method,
                    idempotency_key=key,
                ),
                timeout=self.payments.timeout_s,
            )
        except TimeoutError:
            return Charge(ok=False, reason="payment_timeout")

    async def pay_and_order(
        self,
        show_id: str,
        buyer_id: str,
        key: str,
        method: str,
        held: list[HeldLine],
        currency: str,
    ) -> OrderResult:
        lines = [h.line for h in held]
        total = sum(line.quantity * line.unit_price_minor for line in lines)
        charge = await self._charge(total, currency, method, f"{buyer_id}:{key}")
        if not charge.ok:
            reason = charge.reason or "payment_declined"
            await self._release_all(show_id, held, reason)
            await self.stock_events.publish(
                OrderUpdate(show_id, buyer_id, "failed", idempotency_key=key, reason=reason)
            )
            raise failure(reason)
        draft = order_writer.OrderDraft(show_id, buyer_id, key, currency, tuple(lines), charge.ref)
        try:
            result = await self.writer.write(draft)
        except order_writer.DuplicateOrder:
            return await self._existing(show_id, buyer_id, key, held, charge)
        except (OutOfStock, Unavailable) as exc:
            # OutOfStock: Redis promised units SQL does not have: SQL wins, Redis follows it.
            await self._refund(charge)
            await self._release_all(show_id, held, exc.code)
            if isinstance(exc, OutOfStock):
                for variant_id in exc.fields:
                    await self.inventory.resync(variant_id)
            await self.stock_events.publish(
                OrderUpdate(show_id, buyer_id, "failed", idempotency_key=key, reason=exc.code)
            )
            raise
        # The order stands in SQL: the buyer is answered now. Telling Redis the units are
        # sold and the live channel's copy of the news follow without holding the answer
        # up (a drop's winners waited ~40 ms on them). Were they lost, the hold would run
        # out and Redis would show a unit SQL no longer has; SQL refuses it and Redis
        # follows SQL again (resync): never an oversell.
        update = OrderUpdate(
            show_id,
            buyer_id,
            "confirmed",
            order_id=result.order_id,
            idempotency_key=key,
            total_minor=result.total_minor,
            currency=result.currency,
        )
        self._in_background(self._after_order(held, result.order_id, update))
        return result

    async def _after_order(self, held: list[HeldLine], order_id: str, update: Event) -> None:
        for h in held:
            await self._commit(h, order_id)
        await self.stock_events.publish(update)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="checkout-after-order")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settled(self, timeout_s: float = 5.0) -> None:
        """Wait for the work answered orders left behind (Redis commits, their events)."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout_s)

    async def _commit(self, h: HeldLine, order_id: str) -> None:
        """Tell Redis the units are sold; the order already stands in SQL whatever happens."""
        try:
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
        except (Unavailable, RedisError):
            log.warning("commit not recorded in redis; the next rebuild follows SQL")

    async def _refund(self, charge: Charge) -> None:
        if charge.ref:
            await self.payments.refund(charge.ref)

    async def _existing(
        self, show_id: str, buyer_id: str, key: str, held: list[HeldLine], charge: Charge
    ) -> OrderResult:
        """The key already made an order (Redis forgot it): answer that order, once."""
        await self._refund(charge)
        async with self.sessions() as session:
            order = await orders.find_order(session, buyer_id, key)
        if order is None:
            await self._release_all(show_id, held, "")
            raise Unavailable("inventory_unavailable", "the order could not be written, try again")
        if order.show_id != show_id or not orders.same_lines(order, [h.line for h in held]):
            await self._release_all(show_id, held, IDEMPOTENCY_KEY_REUSED)
            raise failure(IDEMPOTENCY_KEY_REUSED)
        await self._release_all(show_id, held, "")
        for h in held:
            if h.idem:
                await self.redis.hset(h.idem, mapping={"state": "done", "order": order.id})
        return orders.order_result(order, replayed=True)

    async def _release_all(self, show_id: str, held: list[HeldLine], reason: str) -> None:
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
