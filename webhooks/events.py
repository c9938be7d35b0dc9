"""The event types an endpoint can subscribe to: the one list validation and README use."""

from __future__ import annotations

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "order.paid",
        "order.fulfilled",
        "order.cancelled",
        "order.refunded",
        "show.started",
        "show.ended",
        "product.sold_out",
        "deal.started",
        "deal.ended",
    }
)
"""Every event liveshop sends (README "Webhooks" documents each payload)."""

TYPE_MAX_CHARS = 40
"""webhook_messages.type holds 40 characters."""
