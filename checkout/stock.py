"""A variant's stock as the seller sets it and viewers watch it: restock, availability
and notify-me (the viewers told first when a sold-out variant comes back)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import catalog
from checkout.errors import Conflict, InvalidInput
from checkout.inventory import Inventory
from checkout.lookups import Lookups
from checkout.stock_events import StockEvents


class Stock:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        inventory: Inventory,
        lookups: Lookups,
        stock_events: StockEvents,
    ) -> None:
        self.sessions = sessions
        self.inventory = inventory
        self.lookups = lookups
        self.stock_events = stock_events

    async def notify_me(self, show_id: str, viewer_id: str, variant_id: str) -> None:
        await self.lookups.variant(show_id, variant_id, live=False)
        available = (await self.inventory.available([variant_id]))[variant_id]
        if available > 0:
            raise Conflict(
                "not_sold_out",
                f"{available} units are available now",
                fields={"variant_id": "not sold out"},
            )
        await self.inventory.subscribe(variant_id, viewer_id)

    async def availability(self, variant_ids: list[str]) -> dict[str, int]:
        for variant_id in variant_ids:
            await self.lookups.info(variant_id)
        return await self.inventory.available(variant_ids)

    async def set_stock(self, variant_id: str, stock: int) -> dict[str, Any]:
        """Set SQL stock (units not sold) and make Redis follow it in the same step."""
        if not isinstance(stock, int) or isinstance(stock, bool) or stock < 0:
            raise InvalidInput(
                "invalid_stock", "stock must be an integer >= 0", fields={"stock": ">= 0"}
            )
        async with self.sessions.begin() as session:
            variant = await catalog.set_stock(session, variant_id, stock)
            available, back = await self.inventory.restock(variant_id, stock)
            payload: dict[str, Any] = {
                "id": variant.id,
                "sku": variant.sku,
                "stock": variant.stock,
                "available": available,
            }
        info = await self.lookups.info(variant_id)
        self.stock_events.moved(info.show_id, variant_id, available)
        if back:
            await self.stock_events.back_in_stock(info.show_id, variant_id, available)
        return payload
