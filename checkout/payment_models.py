"""Tables of the payment provider's side: a buyer's saved card ("card on file") and the
provider's webhook events already handled (deduplication by event id)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UTCDateTime, utcnow

PROVIDER_ID_LENGTH = 255
"""Stripe's ids (``cus_...``, ``pm_...``, ``evt_...``, ``pi_...``) are at most 255 characters."""


class PaymentCustomer(Base):
    """A buyer's customer at the provider (Stripe: a Customer) and their default card."""

    __tablename__ = "payment_customers"

    buyer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(PROVIDER_ID_LENGTH), unique=True)
    default_payment_method: Mapped[str | None] = mapped_column(
        String(PROVIDER_ID_LENGTH), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProviderEvent(Base):
    """A provider's webhook event that was handled: its id is written in the same
    transaction as what the event changed, so a redelivery changes nothing."""

    __tablename__ = "provider_events"

    id: Mapped[str] = mapped_column(String(PROVIDER_ID_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    ref: Mapped[str | None] = mapped_column(String(PROVIDER_ID_LENGTH), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
