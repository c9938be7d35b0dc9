"""Tables owned by webhooks: the endpoints, the outbox of messages, one delivery per message
and endpoint."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, new_id, utcnow

URL_MAX_CHARS = 1000
DESCRIPTION_MAX_CHARS = 500
ERROR_MAX_CHARS = 500


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ep"))
    url: Mapped[str] = mapped_column(String(URL_MAX_CHARS))
    # "whsec_" + base64 of 32 random bytes (50 characters)
    secret: Mapped[str] = mapped_column(String(64))
    # the event types it wants; None: every type
    event_types: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX_CHARS), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookMessage(Base):
    """One event: its id is the ``webhook-id`` every attempt at every endpoint carries."""

    __tablename__ = "webhook_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("msg"))
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Base):
    """A message to one endpoint. ``next_attempt_at`` is when it is due; a worker claims it
    by moving that time past its lease and writing ``claimed_by`` in one conditional
    UPDATE, and records the outcome only while the claim is still its own."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_newest", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("dlv"))
    message_id: Mapped[str] = mapped_column(ForeignKey("webhook_messages.id"), index=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id"), index=True)
    state: Mapped[DeliveryState] = mapped_column(
        Enum(
            DeliveryState,
            name="webhook_delivery_state",
            native_enum=False,
            values_callable=lambda e: [m.value for m in e],
            validate_strings=True,
            length=16,
        ),
        default=DeliveryState.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX_CHARS), nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
