"""Product cards: what a pinned product shows (name, image, price, deal, units, sold out).

At most three cards are pinned per show (a Redis list, in pin order). The product, its
variants, units and deals come from checkout's port (``live.ports.CheckoutPort``): units
are the live availability, or the catalog's stock when checkout cannot tell them.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from core.currency import priced
from core.errors import CodedError
from live.event_log import key
from live.ports import CheckoutPort
from live.protocol import ProtocolError

MAX_PINNED = 3


class Cards:
    def __init__(self, redis: aioredis.Redis, show_id: str, checkout: CheckoutPort) -> None:
        self.redis = redis
        self.show_id = show_id
        self.checkout = checkout
        self.pins = key(show_id, "pins")

    async def pin(self, product_id: str) -> dict[str, Any]:
        card = await self.card(product_id)
        pinned = [str(p) for p in await self.redis.lrange(self.pins, 0, -1)]
        if product_id not in pinned:
            if len(pinned) >= MAX_PINNED:
                raise ProtocolError(
                    "too_many_pinned", f"at most {MAX_PINNED} cards are pinned; unpin one first"
                )
            await self.redis.rpush(self.pins, product_id)
        return card

    async def unpin(self, product_id: str) -> None:
        removed = await self.redis.lrem(self.pins, 0, product_id)
        if not removed:
            raise ProtocolError(
                "not_pinned", "that product is not pinned", fields={"product_id": "unknown"}
            )

    async def pinned(self) -> list[dict[str, Any]]:
        ids = [str(p) for p in await self.redis.lrange(self.pins, 0, -1)]
        cards = []
        for product_id in ids:
            try:
                cards.append(await self.card(product_id))
            except ProtocolError:
                continue
        return cards

    async def card(self, product_id: str) -> dict[str, Any]:
        products = await self.checkout.products(self.show_id)
        product = next((p for p in products if p.id == product_id), None)
        if product is None or not product.variants:
            raise ProtocolError(
                "product_not_found",
                "no such product in this show",
                fields={"product_id": "unknown"},
            )
        ids = [v.id for v in product.variants]
        available = {v.id: v.stock for v in product.variants}
        deals: dict[str, dict[str, Any]] = {}
        try:
            available.update(await self.checkout.availability(ids))
            for view in await self.checkout.deals(self.show_id):
                data = view.to_json()
                if data.get("variant_id") in available:
                    deals[str(data["variant_id"])] = data
        except CodedError:
            pass
        variants = [
            {
                "id": v.id,
                "sku": v.sku,
                "attributes": v.attributes,
                "price": priced(v.price_minor, v.currency),
                "available": available[v.id],
                "sold_out": available[v.id] <= 0,
                "deal": deals.get(v.id),
            }
            for v in product.variants
        ]
        first = product.variants[0]
        deal = next((d for d in deals.values()), None)
        return {
            "product_id": product.id,
            "name": product.name,
            "description": product.description,
            "image_url": product.image_url,
            "price": priced(first.price_minor, first.currency),
            "deal_price": deal.get("price") if deal else None,
            "ends_at": deal.get("ends_at") if deal else None,
            "available": sum(max(0, n) for n in available.values()),
            "sold_out": all(n <= 0 for n in available.values()),
            "variants": variants,
        }
