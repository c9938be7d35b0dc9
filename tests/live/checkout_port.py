"""A small, real CheckoutPort for live's tests: SQL catalog and orders, Redis counters.

Not checkout's service (written in parallel): just enough real behaviour that live's cart,
buy and deal paths run end to end. Units live in a Redis counter seeded from the SQL
stock; a buy takes them with one atomic script and writes an order row; events go to the
sink live implements.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import catalog
from checkout.errors import CheckoutError, Conflict
from checkout.events import DealStarted, EventSink, OrderUpdate, StockChanged
from checkout.models import Order, OrderLine

_TAKE = """
local have = tonumber(redis.call('GET', KEYS[1]) or '0')
local want = tonumber(ARGV[1])
if have < want then return -1 end
return redis.call('DECRBY', KEYS[1], want)
"""


@dataclass
class Json:
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.data)


class SqlRedisCheckout:
    def __init__(
        self,
        redis: aioredis.Redis,
        sessions: async_sessionmaker[AsyncSession],
        events: EventSink,
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.events = events
        self._take = redis.register_script(_TAKE)

    def _units(self, variant_id: str) -> str:
        return f"tc:{{{variant_id}}}:units"

    async def _seed(self, variant_id: str) -> None:
        async with self.sessions() as session:
            variant = await catalog.get_variant(session, variant_id)
        await self.redis.set(self._units(variant_id), variant.stock, nx=True)

    async def availability(self, variant_ids: list[str]) -> dict[str, int]:
        out = {}
        for variant_id in variant_ids:
            await self._seed(variant_id)
            out[variant_id] = int(await self.redis.get(self._units(variant_id)) or 0)
        return out

    async def _cart(self, show_id: str, buyer_id: str) -> Json:
        raw = await self.redis.hgetall(f"tc:cart:{show_id}:{buyer_id}")
        return Json({"lines": {str(k): int(v) for k, v in raw.items()}})

    async def add_to_cart(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> Json:
        if quantity <= 0:
            raise CheckoutError("quantity must be positive", code="invalid_quantity")
        await self._seed(variant_id)
        await self.redis.hincrby(f"tc:cart:{show_id}:{buyer_id}", variant_id, quantity)
        return await self._cart(show_id, buyer_id)

    async def set_cart_quantity(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> Json:
        await self.redis.hset(f"tc:cart:{show_id}:{buyer_id}", variant_id, quantity)
        return await self._cart(show_id, buyer_id)

    async def remove_from_cart(self, show_id: str, buyer_id: str, variant_id: str) -> Json:
        await self.redis.hdel(f"tc:cart:{show_id}:{buyer_id}", variant_id)
        return await self._cart(show_id, buyer_id)

    async def view_cart(self, show_id: str, buyer_id: str) -> Json:
        return await self._cart(show_id, buyer_id)

    async def checkout_cart(
        self, show_id: str, buyer_id: str, idempotency_key: str, payment_method: str
    ) -> Json:
        cart = (await self._cart(show_id, buyer_id)).data["lines"]
        if not cart:
            raise Conflict("the cart is empty", code="cart_empty")
        (variant_id, quantity), *_ = cart.items()
        return await self.buy_now(
            show_id, buyer_id, variant_id, quantity, idempotency_key, payment_method
        )

    async def buy_now(
        self,
        show_id: str,
        buyer_id: str,
        variant_id: str,
        quantity: int,
        idempotency_key: str,
        payment_method: str,
    ) -> Json:
        await self._seed(variant_id)
        left = int(await self._take(keys=[self._units(variant_id)], args=[quantity]))
        if left < 0:
            raise Conflict("sold out", code="sold_out", fields={"variant_id": "sold out"})
        async with self.sessions.begin() as session:
            variant = await catalog.get_variant(session, variant_id)
            order = Order(
                show_id=show_id,
                buyer_id=buyer_id,
                total_minor=variant.price_minor * quantity,
                currency=variant.currency,
                idempotency_key=idempotency_key,
            )
            session.add(order)
            await session.flush()
            session.add(
                OrderLine(
                    order_id=order.id,
                    variant_id=variant_id,
                    quantity=quantity,
                    unit_price_minor=variant.price_minor,
                )
            )
            result: dict[str, Any] = {
                "order_id": order.id,
                "status": "confirmed",
                "total_minor": order.total_minor,
                "currency": order.currency,
            }
        await self.events.publish(StockChanged(show_id, variant_id, left, left == 0))
        await self.events.publish(
            OrderUpdate(
                show_id,
                buyer_id,
                "confirmed",
                order_id=result["order_id"],
                idempotency_key=idempotency_key,
                total_minor=result["total_minor"],
                currency=result["currency"],
            )
        )
        return Json(result)

    async def start_deal(
        self,
        show_id: str,
        variant_id: str,
        *,
        price_minor: int,
        units: int,
        ends_at: datetime,
        per_buyer_limit: int,
    ) -> Json:
        deal = {
            "variant_id": variant_id,
            "price_minor": price_minor,
            "units": units,
            "ends_at": ends_at.isoformat(),
            "per_buyer_limit": per_buyer_limit,
        }
        await self.redis.hset(f"tc:deals:{show_id}", variant_id, secrets.token_hex(2))
        await self.events.publish(
            DealStarted(show_id, variant_id, price_minor, "EUR", units, per_buyer_limit, ends_at)
        )
        return Json(deal)

    async def stop_deal(self, show_id: str, variant_id: str) -> None:
        await self.redis.hdel(f"tc:deals:{show_id}", variant_id)

    async def notify_me(self, show_id: str, viewer_id: str, variant_id: str) -> None:
        await self.redis.rpush(f"tc:notify:{variant_id}", viewer_id)

    async def deals(self, show_id: str) -> list[Json]:
        return []

    async def orders_of(self, show_id: str, buyer_id: str) -> list[Json]:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Order).where(Order.show_id == show_id, Order.buyer_id == buyer_id)
            )
            return [Json({"order_id": o.id, "total_minor": o.total_minor}) for o in rows]

    async def stats(self, show_id: str) -> dict[str, int]:
        async with self.sessions() as session:
            rows = list(await session.scalars(select(Order).where(Order.show_id == show_id)))
        return {
            "orders": len(rows),
            "revenue_minor": sum(o.total_minor for o in rows),
            "units_sold": 0,
        }
