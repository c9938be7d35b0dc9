"""checkout's ``EventSink``, implemented by live: each domain event goes to its show's event
log.

Stock updates are state, keyed by variant, so a slow socket only ever holds the newest;
checkout coalesces them already (``checkout/stock_events.py``), so they go out as they
come. Order updates are personal: only the buyer's sockets see them. Back-in-stock goes to
each subscriber named in the event.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from checkout.events import (
    BackInStock,
    DealEnded,
    DealStarted,
    Event,
    OrderUpdate,
    StockChanged,
)
from live.event_log import EventLog
from live.protocol import Delivery


class LiveEventSink:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def publish(self, event: Event) -> None:
        event_log = EventLog(self.redis, event.show_id)
        payload = event.payload()
        if isinstance(event, StockChanged):
            await event_log.publish(
                event.kind, payload, Delivery.STATE, key_=f"stock:{event.variant_id}"
            )
        elif isinstance(event, OrderUpdate):
            await event_log.publish(event.kind, payload, Delivery.PERSONAL, to=event.buyer_id)
        elif isinstance(event, BackInStock):
            body = {"variant_id": event.variant_id, "available": event.available}
            for viewer_id in event.viewer_ids:
                await event_log.publish(event.kind, body, Delivery.PERSONAL, to=viewer_id)
        elif isinstance(event, DealStarted | DealEnded):
            await event_log.publish(
                event.kind, payload, Delivery.STATE, key_=f"deal:{event.variant_id}"
            )
        else:
            await event_log.publish(event.kind, payload, Delivery.STATE, key_=event.kind)
