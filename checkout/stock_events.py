"""What checkout tells the live channel, and the coalescing of its stock news.

Every event goes out through ``StockEvents.publish``: a sink that fails is logged and never
undoes a sale. ``StockChanged`` is coalesced: at most one per variant per interval from each
process (the last count wins). The events that units moving imply (back in stock, a deal
sold out, a cart whose hold ran out) are sent from here too.
"""

from __future__ import annotations

import asyncio
import logging

from checkout.events import BackInStock, DealEnded, Event, EventSink, OrderUpdate, StockChanged
from checkout.inventory import Inventory, Released, Reserved, Swept
from checkout.lookups import VariantInfo
from core.aio import cancel_requested

log = logging.getLogger("liveshop.checkout")

STOCK_EVENT_INTERVAL_S = 0.25
"""StockChanged is coalesced: at most one per variant per interval from each process."""


class StockEvents:
    def __init__(self, events: EventSink, inventory: Inventory) -> None:
        self.events = events
        self.inventory = inventory
        self._dirty: dict[str, tuple[str, int]] = {}

    async def publish(self, event: Event) -> None:
        try:
            await self.events.publish(event)
        except Exception:  # a sink that fails must never undo a sale
            log.exception("event sink failed", extra={"kind": event.kind})

    def moved(self, show_id: str, variant_id: str, available: int) -> None:
        """The variant's available units changed: sent with the next coalesced batch."""
        self._dirty[variant_id] = (show_id, available)

    async def run(self) -> None:
        """Send the coalesced StockChanged events, once per interval, until cancelled."""
        while not cancel_requested():
            await asyncio.sleep(STOCK_EVENT_INTERVAL_S)
            dirty, self._dirty = self._dirty, {}
            for variant_id, (show_id, available) in dirty.items():
                await self.publish(StockChanged(show_id, variant_id, available, available == 0))

    async def back_in_stock(self, show_id: str, variant_id: str, available: int) -> None:
        viewers = await self.inventory.pop_subscribers(variant_id)
        if viewers:
            await self.publish(BackInStock(show_id, variant_id, available, viewers))

    async def after_reserve(self, info: VariantInfo, res: Reserved) -> None:
        self.moved(info.show_id, info.variant_id, res.available)
        await self.on_released(res.released)
        if res.back_in_stock:
            await self.back_in_stock(info.show_id, info.variant_id, res.available)
        if res.deal_units_gone:
            await self.publish(DealEnded(info.show_id, info.variant_id, "sold_out"))

    async def swept(self, swept: Swept) -> None:
        """A refused reserve released holds whose time was up: their carts hear it, and the
        units they gave back show in stock."""
        show_id = swept.released[0].show_id
        self.moved(show_id, swept.variant_id, swept.available)
        await self.on_released(swept.released)
        if swept.back_in_stock:
            await self.back_in_stock(show_id, swept.variant_id, swept.available)

    async def on_released(self, released: list[Released]) -> None:
        for hold in released:
            if hold.hold_id.startswith("c:"):
                await self.publish(
                    OrderUpdate(hold.show_id, hold.buyer_id, "cart_expired", reason="hold_expired")
                )
