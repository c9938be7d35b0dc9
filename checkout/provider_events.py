"""What a payment provider tells liveshop on its own (Stripe: a webhook event), in
checkout's words: ``PaymentEvent``. The provider's module builds them from what it
verified (``checkout/stripe_payments.py``: ``StripePaymentProvider.event_of``);
``checkout/reconcile.py`` applies them."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class PaymentEventKind(enum.StrEnum):
    """The events liveshop acts on (Stripe's type names); every other type is ignored."""

    SUCCEEDED = "payment_intent.succeeded"
    FAILED = "payment_intent.payment_failed"
    REFUNDED = "charge.refunded"


@dataclass(frozen=True)
class PaymentEvent:
    event_id: str
    """The provider's event id (``evt_...``): one event is applied once."""
    kind: PaymentEventKind
    ref: str
    """The payment's id at the provider (Stripe: the PaymentIntent ``pi_...``), as stored
    in ``orders.payment_ref`` and on the payment attempt."""
    attempt_id: str | None = None
    """liveshop's attempt id, from the payment's metadata (None when it has none)."""
    amount_minor: int = 0
    amount_refunded_minor: int = 0
    refunded: bool = False
    """REFUNDED: the payment is refunded whole (a partial refund sends the event too)."""
    reason: str | None = None
    """FAILED: the provider's decline or error code."""
