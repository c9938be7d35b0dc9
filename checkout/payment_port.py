"""The payments port the buy path speaks to every provider (the built-in test provider and
Stripe): what a charge came to, asked for in two steps so that a crash is safe.

The integrator's rewrite of ``checkout/payments.py`` carries these same definitions; until
that lands they live here, and ``checkout/stripe_payments.py`` is written to them. (Once
``payments.py`` has them, this module becomes a re-export or goes.)

``PaymentState``: what the provider did with one payment attempt.

| state | meaning |
|---|---|
| ``succeeded`` | money taken |
| ``failed`` | refused (``reason`` says why, a checkout error code); nothing taken |
| ``requires_action`` | the buyer must authenticate (3-D Secure) on the page (``client_secret``) |
| ``pending`` | the provider is still working on it, or did not answer: look it up later |
| ``none`` | the provider has no charge for this attempt (never confirmed, or cancelled) |
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from checkout.errors import PaymentFailed


class PaymentState(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REQUIRES_ACTION = "requires_action"
    PENDING = "pending"
    NONE = "none"


@dataclass(frozen=True)
class PaymentRequest:
    attempt_id: str
    """liveshop's id of this payment attempt (``pay_...``): in the provider's metadata."""
    buyer_id: str
    amount_minor: int
    currency: str
    """ISO 4217, upper case."""
    payment_method: str
    """What the buyer sent: a test method, ``saved`` or a Stripe PaymentMethod id."""


@dataclass(frozen=True)
class Charge:
    state: PaymentState
    ref: str | None = None
    """The provider's id (Stripe: the PaymentIntent id ``pi_...``)."""
    reason: str | None = None
    """FAILED: a checkout error code (``payment_declined``, ``payment_method_invalid``...)."""
    client_secret: str | None = None
    """REQUIRES_ACTION: the page completes the payment with it (Stripe.js)."""

    @property
    def ok(self) -> bool:
        return self.state is PaymentState.SUCCEEDED


RecordRef = Callable[[str], Awaitable[bool]]
"""Writes the provider's id to the attempt's SQL row; False: do not go on (cancel)."""


class PaymentError(PaymentFailed):
    """A provider refused or failed an operation that is not a charge (a refund, saving a
    card); ``code`` is a checkout error code."""


class PaymentProvider(Protocol):
    name: str
    """``test`` or ``stripe`` (stored on the attempt row)."""
    timeout_s: float
    """How long the caller waits for ``charge``; the payment hold must outlast it."""

    async def charge(self, request: PaymentRequest, record_ref: RecordRef) -> Charge:
        """Create the payment unconfirmed, hand its id to ``record_ref``, and confirm it
        only if that returned True; otherwise cancel it and answer NONE."""
        ...

    async def lookup(self, attempt_id: str, ref: str | None) -> Charge:
        """What the provider did with an attempt (maybe a dead process's)."""
        ...

    async def cancel(self, attempt_id: str, ref: str | None) -> Charge:
        """Make sure the attempt never charges: NONE once cancelled, SUCCEEDED if it had."""
        ...

    async def refund(self, ref: str, *, amount_minor: int, idempotency_key: str) -> None:
        """Give the money back (whole or part); PaymentError when refused. A payment
        refunded whole already is not an error."""
        ...
