"""One-tap buy and paying: reserve, record the attempt, charge, write the order, answer.

The hot path of a tap is one Lua call (``Inventory.reserve``); a refusal never touches SQL.
A tap that got units writes its payment attempt to SQL (``checkout/attempts.py``) before
the provider is called, pays, then writes the order and the conditional stock decrement in
one SQL transaction (shared with the orders written at the same moment:
``order_writer.OrderWriter``), answers, and then, in the background, tells Redis the units
are sold and sends the order event (``checkout/settle.py``). A repeated key waits for its
first request and answers its outcome, from Redis or from the attempt in SQL; a failed
payment gives the held units back. The cart's checkout pays through the same
``pay_and_order``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import orders
from checkout.attempts import Attempt, Attempts, HeldLine
from checkout.error_codes import IDEMPOTENCY_KEY_REUSED
from checkout.errors import Conflict, PaymentFailed
from checkout.holds import HoldState
from checkout.inventory import Inventory, Replay, idem_key
from checkout.lookups import Lookups
from checkout.models import AttemptState
from checkout.orders import LineSpec
from checkout.payments import Charge, PaymentProvider, PaymentRequest, PaymentState
from checkout.results import OrderResult
from checkout.settle import Settler
from checkout.stock_events import StockEvents
from checkout.validation import check_key, check_method, check_quantity, failure

__all__ = ["Buying", "HeldLine", "Poll"]

log = logging.getLogger("liveshop.checkout")

REPLAY_MARGIN_S = 5.0
SQL_POLL_S = 0.2

Poll = Callable[[], Awaitable[tuple[str, str]]]
"""Reads a first request's (state, reason) again while a repeat waits on it."""


class Buying:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        inventory: Inventory,
        payments: PaymentProvider,
        attempts: Attempts,
        settler: Settler,
        lookups: Lookups,
        stock_events: StockEvents,
        *,
        payment_hold_s: int,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.inventory = inventory
        self.payments = payments
        self.attempts = attempts
        self.settler = settler
        self.lookups = lookups
        self.stock_events = stock_events
        self.payment_hold_s = payment_hold_s

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
        try:
            info = await self.lookups.variant(show_id, variant_id)
        except Conflict as exc:
            # A tap sent again after the show ended (its first answer was lost): the order
            # it made is the answer, not "the show has ended".
            if exc.code == "show_ended":
                async with self.sessions() as session:
                    existing = await orders.find_order(session, buyer_id, idempotency_key)
                if existing is not None and existing.show_id == show_id:
                    return orders.order_result(existing, replayed=True)
            raise
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
        if res.state == "failed":
            raise failure(res.reason)
        return await self.outcome(buyer_id, key, poll)

    async def outcome(
        self,
        buyer_id: str,
        key: str,
        poll: Poll | None = None,
        *,
        show_id: str | None = None,
        lines: list[LineSpec] | None = None,
    ) -> OrderResult:
        """The outcome of the key's first request, once it has one (bounded wait): its
        order, or its failure. Read from SQL (the order, the attempt) and from Redis
        (``poll``: failures before any attempt, such as an expired cart); a Redis error
        only leaves SQL to decide."""
        deadline = time.monotonic() + self.payments.timeout_s + REPLAY_MARGIN_S
        while True:
            async with self.sessions() as session:
                order = await orders.find_order(session, buyer_id, key)
            if order is not None:
                if (show_id is not None and order.show_id != show_id) or (
                    lines is not None and not orders.same_lines(order, lines)
                ):
                    raise failure(IDEMPOTENCY_KEY_REUSED)
                return orders.order_result(order, replayed=True)
            attempt = await self.attempts.get(buyer_id, key)
            if attempt is not None:
                if show_id is not None and attempt.show_id != show_id:
                    raise failure(IDEMPOTENCY_KEY_REUSED)
                if attempt.state in (AttemptState.FAILED, AttemptState.REFUNDED):
                    raise failure(attempt.reason or "payment_interrupted")
                if attempt.state is AttemptState.REQUIRES_ACTION:
                    return await self._after_authentication(attempt)
            state, reason = await self._poll(poll)
            if state == "failed":
                raise failure(reason)
            if time.monotonic() >= deadline:
                raise Conflict(
                    "request_in_progress",
                    "a request with this key is still in progress, try again",
                    extra={"retry": True},
                )
            await asyncio.sleep(SQL_POLL_S)

    async def _poll(self, poll: Poll | None) -> tuple[str, str]:
        if poll is None:
            return "pending", ""
        try:
            return await poll()
        except RedisError:
            return "pending", ""

    async def _after_authentication(self, attempt: Attempt) -> OrderResult:
        """The buyer was asked to authenticate: ask the provider how it went."""
        charge = await self.payments.lookup(attempt.id, attempt.provider_ref)
        if charge.ok:
            return await self.settler.complete(attempt, charge)
        if charge.state is PaymentState.REQUIRES_ACTION:
            raise _requires_action(charge)
        if charge.state is PaymentState.PENDING:
            raise Conflict(
                "request_in_progress", "the payment is being completed, try again",
                extra={"retry": True},
            )  # fmt: skip
        reason = charge.reason or "payment_declined"
        await self.settler.failed(attempt, reason)
        raise failure(reason)

    async def _charge(self, request: PaymentRequest) -> Charge:
        refs: list[str] = []

        async def record(ref: str) -> bool:
            refs.append(ref)
            if ref == request.ref:
                return True  # (minted: written with the attempt's row)
            return await self.attempts.move(
                request.attempt_id,
                frozenset({AttemptState.OPEN}),
                AttemptState.CHARGING,
                provider_ref=ref,
            )

        # The provider bounds its own calls (``timeout_s``): no cancellation here, which
        # would cut an SQL write of the attempt (or the test provider's ledger) in half.
        charge = await self.payments.charge(request, record)
        if charge.state is not PaymentState.PENDING:
            return charge
        # No answer in time: whether it charged is not known. Stop it, and learn which.
        charge = await self.payments.cancel(request.attempt_id, refs[0] if refs else None)
        if charge.state is PaymentState.NONE:
            return Charge(PaymentState.FAILED, charge.ref, "payment_timeout")
        return charge

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
        minted = self.payments.mint_ref()
        try:
            attempt_id = await self.attempts.open(
                buyer_id=buyer_id, key=key, show_id=show_id, amount_minor=total,
                currency=currency, provider=self.payments.name, held=held, provider_ref=minted,
            )  # fmt: skip
        except Exception:
            await self.settler.release_all(show_id, held, "")
            raise
        if attempt_id is None:
            # The key paid before (Redis forgot it): the first attempt decides, once.
            await self.settler.release_all(show_id, held, "")
            try:
                return await self.outcome(buyer_id, key, show_id=show_id, lines=lines)
            finally:
                first = await self.attempts.get(buyer_id, key)
                if first is not None:
                    await self.settler.answer_key(held, first)
        attempt = Attempt.new(attempt_id, buyer_id, key, show_id, total, currency, held)
        request = PaymentRequest(attempt_id, buyer_id, total, currency, method, key, minted)
        charge = await self._charge(request)
        if charge.ok:
            return await self.settler.charged(attempt, charge)
        if charge.state is PaymentState.REQUIRES_ACTION:
            moved = await self.attempts.move(
                attempt_id, frozenset({AttemptState.CHARGING}), AttemptState.REQUIRES_ACTION
            )
            if moved:
                raise _requires_action(charge)
        elif charge.state is PaymentState.FAILED or charge.state is PaymentState.NONE:
            reason = charge.reason or "payment_declined"
            if await self.settler.failed(attempt, reason):
                raise failure(reason)
        # (PENDING: the provider did not say; a settler asks it again in a few seconds.)
        return await self.outcome(buyer_id, key, show_id=show_id, lines=lines)

    async def settled(self, timeout_s: float = 5.0) -> None:
        await self.settler.settled(timeout_s)


def _requires_action(charge: Charge) -> PaymentFailed:
    return PaymentFailed(
        "payment_requires_action",
        "the card needs the buyer's authentication: complete it, then retry with the same key",
        extra={"client_secret": charge.client_secret, "payment_ref": charge.ref, "retry": True},
    )
