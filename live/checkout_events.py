"""checkout's ``EventSink``, implemented by live: each domain event goes to its show's stream.

Stock updates are state, keyed by variant, so a slow socket only ever holds the newest. The
checkout already coalesces them (``STOCK_EVENT_INTERVAL_S``), so by default they go out at
once; a ``coalesce_s`` above zero coalesces here too (the latest wins). Order
updates are personal: only the buyer's sockets see them. Back-in-stock goes to each
subscriber named in the event.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from checkout.aio import stop_tasks
from checkout.events import (
    BackInStock,
    DealEnded,
    DealStarted,
    Event,
    OrderUpdate,
    StockChanged,
)
from live.protocol import Delivery
from live.streams import ShowStream

log = logging.getLogger("liveshop.live")


class LiveEventSink:
    def __init__(self, redis: aioredis.Redis, coalesce_s: float = 0.0) -> None:
        self.redis = redis
        self.coalesce_s = coalesce_s
        self._pending: dict[tuple[str, str], StockChanged] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def publish(self, event: Event) -> None:
        if isinstance(event, StockChanged):
            if self.coalesce_s <= 0:  # (coalesced once already, by the checkout)
                await self._publish_stock(event)
                return
            self._pending[(event.show_id, event.variant_id)] = event
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.get_running_loop().create_task(self._flush_later())
            return
        stream = ShowStream(self.redis, event.show_id)
        payload = event.payload()
        if isinstance(event, OrderUpdate):
            await stream.publish(event.kind, payload, Delivery.PERSONAL, to=event.buyer_id)
        elif isinstance(event, BackInStock):
            body = {"variant_id": event.variant_id, "available": event.available}
            for viewer_id in event.viewer_ids:
                await stream.publish(event.kind, body, Delivery.PERSONAL, to=viewer_id)
        elif isinstance(event, DealStarted | DealEnded):
            await stream.publish(
                event.kind, payload, Delivery.STATE, key_=f"deal:{event.variant_id}"
            )
        else:
            await stream.publish(event.kind, payload, Delivery.STATE, key_=event.kind)

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.coalesce_s)
        await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for event in pending.values():
            try:
                await self._publish_stock(event)
            except Exception:
                log.exception("stock event lost", extra={"show": event.show_id})

    async def _publish_stock(self, event: StockChanged) -> None:
        await ShowStream(self.redis, event.show_id).publish(
            event.kind, event.payload(), Delivery.STATE, key_=f"stock:{event.variant_id}"
        )

    async def close(self) -> None:
        if self._flusher is not None:
            await stop_tasks([self._flusher])
        await self.flush()
