"""A buyer's cart in a show: one hold per line (``c:SHOW:BUYER`` in each variant's keys)
for the cart hold time, and the checkout that pays for all lines at once.

The lines live in ``cart:SHOW:BUYER`` (variant -> quantity); a line whose hold ran out is
dropped the next time the cart is read. Checking out moves every hold to paying, then pays
through the one-tap buy's ``Buying.pay_and_order``; a repeated key is answered from SQL or
from its claim (``chk:BUYER:KEY``: show|state|outcome).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import orders
from checkout.attempts import HeldLine
from checkout.buy import Buying, Poll
from checkout.error_codes import IDEMPOTENCY_KEY_REUSED
from checkout.errors import Conflict, NotFound, PaymentFailed
from checkout.events import OrderUpdate
from checkout.holds import HoldState
from checkout.inventory import Inventory, Replay, Reserved, prefix
from checkout.lookups import Lookups, server_ms
from checkout.orders import LineSpec
from checkout.results import CartLine, CartView, OrderResult, from_ms
from checkout.show_state import ShowStatus
from checkout.stock_events import StockEvents
from checkout.validation import check_key, check_method, check_quantity, failure

CLAIM_TTL_S = 24 * 3600


class Carts:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        inventory: Inventory,
        lookups: Lookups,
        stock_events: StockEvents,
        buying: Buying,
        *,
        cart_hold_s: int,
        payment_hold_s: int,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.inventory = inventory
        self.lookups = lookups
        self.stock_events = stock_events
        self.buying = buying
        self.cart_hold_s = cart_hold_s
        self.payment_hold_s = payment_hold_s

    @staticmethod
    def _cart_key(show_id: str, buyer_id: str) -> str:
        return f"cart:{show_id}:{buyer_id}"

    @staticmethod
    def _cart_hold(show_id: str, buyer_id: str) -> str:
        return f"c:{show_id}:{buyer_id}"

    async def add_to_cart(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> CartView:
        check_quantity(quantity)
        await self.lookups.variant(show_id, variant_id)
        current = await self.redis.hget(self._cart_key(show_id, buyer_id), variant_id)
        held = await self._cart_line_alive(show_id, buyer_id, variant_id) if current else False
        base = int(current) if held and current else 0
        return await self._set_line(show_id, buyer_id, variant_id, check_quantity(base + quantity))

    async def set_cart_quantity(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> CartView:
        check_quantity(quantity, allow_zero=True)
        if quantity == 0:
            return await self.remove_from_cart(show_id, buyer_id, variant_id)
        await self.lookups.variant(show_id, variant_id)
        return await self._set_line(show_id, buyer_id, variant_id, quantity)

    async def remove_from_cart(self, show_id: str, buyer_id: str, variant_id: str) -> CartView:
        info = await self.lookups.variant(show_id, variant_id, live=False)
        key = self._cart_key(show_id, buyer_id)
        if await self.redis.hget(key, variant_id) is None:
            raise NotFound(
                "not_in_cart",
                "this variant is not in the cart",
                fields={"variant_id": "not in the cart"},
            )
        avail, back, _ = await self.inventory.release(
            variant_id, self._cart_hold(show_id, buyer_id)
        )
        await self.redis.hdel(key, variant_id)
        self.stock_events.moved(show_id, variant_id, avail)
        if back:
            await self.stock_events.back_in_stock(info.show_id, variant_id, avail)
        return await self.view_cart(show_id, buyer_id)

    async def release_show(self, show_id: str) -> int:
        """The show ended: every cart's held lines go back to stock and each buyer hears
        of it (an ``order`` event, status ``cart_released``). A line being paid for (a
        checkout in flight) is left to its checkout, which settles it as before. Returns
        the number of carts released."""
        released_carts = 0
        async for raw_key in self.redis.scan_iter(match=f"cart:{show_id}:*", count=200):
            cart_key = str(raw_key)
            buyer_id = cart_key.split(":", 2)[2]
            hold_id = self._cart_hold(show_id, buyer_id)
            entries = [str(k) for k in await self.redis.hkeys(cart_key)]
            released: list[str] = []
            for variant_id in entries:
                avail, back, units = await self.inventory.release(
                    variant_id, hold_id, only=HoldState.HELD
                )
                if not units:
                    continue
                released.append(variant_id)
                self.stock_events.moved(show_id, variant_id, avail)
                if back:
                    await self.stock_events.back_in_stock(show_id, variant_id, avail)
            if released:
                await self.redis.hdel(cart_key, *released)
                released_carts += 1
                await self.stock_events.publish(
                    OrderUpdate(show_id, buyer_id, "cart_released", reason="show_ended")
                )
        return released_carts

    async def _show_ended(self, show_id: str) -> bool:
        try:
            return await self.lookups.show_status(show_id) is ShowStatus.ENDED
        except NotFound:
            return True

    async def _cart_line_alive(self, show_id: str, buyer_id: str, variant_id: str) -> bool:
        hk = prefix(variant_id) + "h:" + self._cart_hold(show_id, buyer_id)
        return bool(await self.redis.exists(hk))

    async def _set_line(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> CartView:
        info = await self.lookups.info(variant_id)
        res = await self.inventory.reserve(
            variant_id,
            self._cart_hold(show_id, buyer_id),
            buyer_id=buyer_id,
            show_id=show_id,
            quantity=quantity,
            ttl_ms=self.cart_hold_s * 1000,
            state=HoldState.HELD,
        )
        assert isinstance(res, Reserved)
        await self.stock_events.after_reserve(info, res)
        await self.redis.hset(self._cart_key(show_id, buyer_id), variant_id, quantity)
        return await self.view_cart(show_id, buyer_id)

    async def view_cart(self, show_id: str, buyer_id: str) -> CartView:
        await self.lookups.show_status(show_id)
        key = self._cart_key(show_id, buyer_id)
        entries = {str(k): str(v) for k, v in (await self.redis.hgetall(key)).items()}
        hold_id = self._cart_hold(show_id, buyer_id)
        now_ms = await server_ms(self.redis)
        lines: list[CartLine] = []
        expired: list[str] = []
        for variant_id in sorted(entries):
            hk = prefix(variant_id) + "h:" + hold_id
            raw = await self.redis.hmget(hk, ["qty", "exp", "deal", "price"])
            qty, exp, deal, price = (int(v) if v is not None else None for v in raw)
            if qty is None or exp is None or exp <= now_ms:
                expired.append(variant_id)
                continue
            info = await self.lookups.info(variant_id)
            unit = info.price_minor
            if deal and price is not None and await self._deal_running(variant_id, now_ms):
                unit = price
            lines.append(CartLine(variant_id, qty, unit, info.currency, from_ms(exp)))
        if expired:
            await self.redis.hdel(key, *expired)
        return CartView(show_id, buyer_id, tuple(lines), tuple(expired))

    async def _deal_running(self, variant_id: str, now_ms: int) -> bool:
        ends = await self.redis.hget(prefix(variant_id) + "deal", "ends")
        return ends is not None and int(ends) > now_ms

    async def checkout_cart(
        self, show_id: str, buyer_id: str, idempotency_key: str, payment_method: str
    ) -> OrderResult:
        check_key(idempotency_key)
        check_method(payment_method)
        # (the order a key made first: a checkout sent again after the show ended gets it)
        async with self.sessions() as session:
            existing = await orders.find_order(session, buyer_id, idempotency_key)
        if existing is not None:
            if existing.show_id != show_id:
                raise failure(IDEMPOTENCY_KEY_REUSED)
            return orders.order_result(existing, replayed=True)
        await self.lookups.require_live(show_id)
        claim = f"chk:{buyer_id}:{idempotency_key}"
        if not await self.redis.set(claim, f"{show_id}|pending|", nx=True, ex=CLAIM_TTL_S):
            value = str(await self.redis.get(claim) or "")
            if value.split("|")[0] != show_id:
                raise failure(IDEMPOTENCY_KEY_REUSED)
            return await self.buying.replay(
                Replay("pending", "", ""), buyer_id, idempotency_key, self._claim_poll(claim)
            )
        try:
            result = await self._checkout_cart(show_id, buyer_id, idempotency_key, payment_method)
        except PaymentFailed as exc:
            if exc.code != "payment_requires_action":  # (that one waits for the buyer)
                await self.redis.set(claim, f"{show_id}|failed|{exc.code}", ex=CLAIM_TTL_S)
            raise
        except BaseException:
            await self.redis.delete(claim)
            raise
        await self.redis.set(claim, f"{show_id}|done|{result.order_id}", ex=CLAIM_TTL_S)
        return result

    def _claim_poll(self, claim: str) -> Poll:
        async def poll() -> tuple[str, str]:
            value = await self.redis.get(claim)
            if value is None:
                return "gone", ""
            _, state, reason = str(value).split("|", 2)
            return state, reason

        return poll

    async def _checkout_cart(
        self, show_id: str, buyer_id: str, key: str, method: str
    ) -> OrderResult:
        cart_key = self._cart_key(show_id, buyer_id)
        entries = {str(k): str(v) for k, v in (await self.redis.hgetall(cart_key)).items()}
        if not entries:
            raise Conflict("cart_empty", "the cart is empty")
        hold_id = self._cart_hold(show_id, buyer_id)
        held: list[HeldLine] = []
        expired: list[str] = []
        currency: str | None = None
        ttl = self.payment_hold_s * 1000
        for variant_id in sorted(entries):
            moved = await self.inventory.move(
                variant_id, hold_id, HoldState.HELD, HoldState.PAYING, ttl
            )
            if moved is None:
                expired.append(variant_id)
                continue
            info = await self.lookups.info(variant_id)
            currency = currency or info.currency
            price = (
                moved.deal_price_minor if moved.deal_price_minor is not None else info.price_minor
            )
            held.append(HeldLine(LineSpec(variant_id, moved.quantity, price), hold_id, moved.epoch))
        mixed = bool(held) and any(
            self.lookups.cached(h.line.variant_id).currency != (currency or "") for h in held
        )
        if expired or mixed:  # give the moved holds back to the cart before refusing
            # (the show ended while this checkout moved its lines: the end released the
            # others, so these go back to stock too, not to a cart the buyer was told is
            # empty)
            ended = await self._show_ended(show_id)
            for h in held:
                if ended:
                    avail, back, units = await self.inventory.release(h.line.variant_id, hold_id)
                    if units:
                        self.stock_events.moved(show_id, h.line.variant_id, avail)
                        if back:
                            await self.stock_events.back_in_stock(show_id, h.line.variant_id, avail)
                    continue
                await self.inventory.move(
                    h.line.variant_id,
                    hold_id,
                    HoldState.PAYING,
                    HoldState.HELD,
                    self.cart_hold_s * 1000,
                )
            if ended:
                await self.redis.hdel(cart_key, *entries)
                raise Conflict("show_ended", "the show has ended")
            if mixed and not expired:
                raise Conflict("mixed_currency", "the cart mixes currencies")
            await self.redis.hdel(cart_key, *expired)
            raise Conflict(
                "cart_expired",
                "the holds of some cart lines ran out",
                fields={variant_id: "hold expired" for variant_id in expired},
            )
        assert currency is not None
        try:
            result = await self.buying.pay_and_order(show_id, buyer_id, key, method, held, currency)
        finally:
            await self.redis.delete(cart_key)
        return result
