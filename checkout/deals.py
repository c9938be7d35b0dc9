"""Deals: a lower price on a variant for some units, until a time, at most N per buyer.

A deal's state lives in the variant's Redis keys (``inventory.start_deal``); the show's
running deals are listed in ``deals:SHOW``. Reserves take deal units in the same Lua call;
the sweep ends a deal whose time is up (``recovery``).
"""

from __future__ import annotations

from datetime import datetime

import redis.asyncio as aioredis

from checkout import webhook_events
from checkout.errors import InvalidInput, NotFound
from checkout.events import DealEnded, DealStarted
from checkout.inventory import Inventory
from checkout.lookups import Lookups, server_ms
from checkout.results import DealView, from_ms
from checkout.stock_events import StockEvents
from checkout.validation import MAX_PRICE_MINOR, MAX_QUANTITY, MAX_UNITS


class Deals:
    def __init__(
        self,
        redis: aioredis.Redis,
        inventory: Inventory,
        lookups: Lookups,
        stock_events: StockEvents,
    ) -> None:
        self.redis = redis
        self.inventory = inventory
        self.lookups = lookups
        self.stock_events = stock_events

    async def start(
        self,
        show_id: str,
        variant_id: str,
        *,
        price_minor: int,
        units: int,
        ends_at: datetime,
        per_buyer_limit: int,
    ) -> DealView:
        fields: dict[str, str] = {}
        for name, value, low, high in (
            ("price_minor", price_minor, 0, MAX_PRICE_MINOR),
            ("units", units, 1, MAX_UNITS),
            ("per_buyer_limit", per_buyer_limit, 1, MAX_QUANTITY),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                fields[name] = f"an integer from {low} to {high}"
        if not isinstance(ends_at, datetime) or ends_at.tzinfo is None:
            fields["ends_at"] = "a timezone-aware time"
        if fields:
            raise InvalidInput("invalid_deal", "the deal is not valid", fields=fields)
        info = await self.lookups.variant(show_id, variant_id)
        ends_ms = int(ends_at.timestamp() * 1000)
        await self.inventory.start_deal(
            variant_id,
            show_id=show_id,
            price_minor=price_minor,
            units=units,
            ends_ms=ends_ms,
            per_buyer_limit=per_buyer_limit,
        )
        await self.redis.sadd(f"deals:{show_id}", variant_id)
        ends = from_ms(ends_ms)
        await self.stock_events.publish(
            DealStarted(
                show_id, variant_id, price_minor, info.currency, units, per_buyer_limit, ends
            )
        )
        await webhook_events.deal_started(
            self.lookups.sessions,
            show_id,
            variant_id,
            price_minor=price_minor,
            regular_price_minor=info.price_minor,
            currency=info.currency,
            units=units,
            per_buyer_limit=per_buyer_limit,
            ends_at=ends,
        )
        return DealView(
            show_id,
            variant_id,
            price_minor,
            info.price_minor,
            info.currency,
            units,
            units,
            per_buyer_limit,
            ends,
        )

    async def stop(self, show_id: str, variant_id: str) -> None:
        await self.lookups.variant(show_id, variant_id, live=False)
        if not await self.inventory.stop_deal(variant_id):
            raise NotFound("deal_not_found", "no deal runs on this variant")
        await self.redis.srem(f"deals:{show_id}", variant_id)
        await self.stock_events.publish(DealEnded(show_id, variant_id, "stopped"))
        await webhook_events.deal_ended(self.lookups.sessions, show_id, variant_id, "stopped")

    async def running(self, show_id: str) -> list[DealView]:
        """The show's deals whose time is not up, by variant id."""
        await self.lookups.show_status(show_id)
        now_ms = await server_ms(self.redis)
        out: list[DealView] = []
        members = await self.redis.smembers(f"deals:{show_id}")
        for variant_id in sorted(str(m) for m in members):
            raw = await self.inventory.deal(variant_id)
            if raw is None or int(raw["ends"]) <= now_ms:
                continue
            info = await self.lookups.info(variant_id)
            out.append(
                DealView(
                    show_id,
                    variant_id,
                    int(raw["price"]),
                    info.price_minor,
                    info.currency,
                    int(raw["units"]),
                    int(raw["left"]),
                    int(raw["limit"]),
                    from_ms(int(raw["ends"])),
                )
            )
        return out
