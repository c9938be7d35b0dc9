"""Domain events checkout publishes for the live channel to carry.

checkout never knows how they travel: it calls an ``EventSink``. The live channel
implements the sink and writes each event to the show's stream. Stock updates are
coalesced in checkout (``checkout.stock_events``: at most one per variant per 0.25 s per
process), and written at once by the sink. ``kind`` names the event on the wire.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    show_id: str

    def payload(self) -> dict[str, Any]:
        """The JSON-ready fields (datetimes as ISO 8601 UTC), without ``show_id``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "show_id":
                continue
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True)
class StockChanged(Event):
    """Units a viewer can still take now (not held, not sold)."""

    kind: ClassVar[str] = "stock"
    variant_id: str
    available: int
    sold_out: bool


@dataclass(frozen=True)
class DealStarted(Event):
    kind: ClassVar[str] = "deal_started"
    variant_id: str
    deal_price_minor: int
    currency: str
    units: int
    per_buyer_limit: int
    ends_at: datetime


@dataclass(frozen=True)
class DealEnded(Event):
    kind: ClassVar[str] = "deal_ended"
    variant_id: str
    reason: str  # "expired", "stopped" or "sold_out"


@dataclass(frozen=True)
class OrderUpdate(Event):
    """One buyer's order status: personal, delivered to that buyer only."""

    kind: ClassVar[str] = "order"
    buyer_id: str
    status: str  # "confirmed", "failed", "cart_expired", "cart_released" (the show ended)
    order_id: str | None = None
    idempotency_key: str | None = None
    total_minor: int | None = None
    currency: str | None = None
    reason: str | None = None  # coded, e.g. "payment_declined"


@dataclass(frozen=True)
class BackInStock(Event):
    """Units came back for a sold-out variant: these subscribers, oldest first, may buy."""

    kind: ClassVar[str] = "back_in_stock"
    variant_id: str
    available: int
    viewer_ids: list[str] = field(default_factory=list)


class EventSink(Protocol):
    async def publish(self, event: Event) -> None: ...
