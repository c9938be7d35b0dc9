"""Stripe behind the payments port (``checkout/payments.py``), with the official
``stripe`` package's async client (on httpx), and a buyer's card on file.

A charge is two calls: a PaymentIntent is created unconfirmed (amount, currency, the
buyer's Customer, the payment method, ``metadata.attempt_id`` / ``buyer_id``), its id is
handed to ``record_ref`` (the caller writes it to SQL), and only then is it confirmed
off-session. A PaymentIntent whose id SQL never got is never confirmed, so it never
charges: that is what makes a crash between the two safe. Stripe's idempotency keys are
sent where Stripe takes them but never relied on (localstripe ignores them; liveshop's
SQL rows make a retry safe).

What Stripe answers, and what the port says:

- PaymentIntent ``succeeded``: SUCCEEDED, ``ref`` = the PaymentIntent id.
- ``requires_action`` (3-D Secure), or off-session a ``CardError``
  ``authentication_required``: REQUIRES_ACTION with the ``client_secret`` the page
  completes it with (Stripe.js).
- ``processing``, ``requires_capture``: PENDING (look it up later).
- a ``CardError`` (a decline), ``requires_payment_method`` after a failed confirm, a card
  declined when it is attached: FAILED ``payment_declined``.
- a payment method Stripe does not know, another customer's, not a card, or an
  ``InvalidRequestError`` on confirm: FAILED ``payment_method_invalid``.
- ``saved`` and no saved card: FAILED ``payment_method_missing``.
- a network error, timeout, 5xx or 429 while confirming: PENDING with the ``ref``.
- the same before the PaymentIntent exists: FAILED ``payment_provider_unavailable``
  (nothing was confirmed, so nothing can charge).
- a bad key or a refused request of ours (``AuthenticationError``, ``PermissionError``):
  FAILED ``payment_provider_error`` (logged).
- ``record_ref`` answered False: the PaymentIntent is cancelled, NONE.
- ``requires_confirmation`` (never confirmed), ``canceled``, no such PaymentIntent, or no
  ``ref``: NONE.

``lookup`` retrieves the PaymentIntent by ``ref`` and maps it as above (NONE for a
``requires_confirmation`` one is not final while its charge may still run: ``cancel``
makes it final). ``cancel`` cancels what can be cancelled and answers the state after:
NONE, or SUCCEEDED when it had charged. ``refund`` refunds through Stripe; the refund
carries the caller's key in its metadata, and a refund of that key already there, or a
payment refunded whole already, is success without a second call.

No Stripe exception leaves this module: each becomes a ``Charge`` or a ``PaymentError``
with a checkout error code.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.errors import CheckoutError
from checkout.payment_models import PaymentCustomer
from checkout.payments import (
    Charge,
    PaymentError,
    PaymentRequest,
    PaymentState,
    RecordRef,
)
from checkout.provider_events import PaymentEvent, PaymentEventKind

log = logging.getLogger("liveshop.checkout.stripe")

SAVED = "saved"
"""The payment method a buy sends for the buyer's default saved card."""

# PaymentIntent statuses (https://docs.stripe.com/payments/paymentintents/lifecycle)
_CANCELABLE = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"}
)
_AUTHENTICATION = "authentication_required"
_TRANSIENT = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)
_OURS = (stripe.AuthenticationError, stripe.PermissionError)


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str
    publishable_key: str | None
    webhook_secret: str | None
    api_base: str = "https://api.stripe.com"
    js_url: str = "https://js.stripe.com/v3/"
    timeout_s: float = 10.0
    """How long the caller waits for ``charge``: each request to Stripe gets half."""


@dataclass(frozen=True)
class CardSetup:
    """What the page needs to save a card: Stripe.js, its key and the SetupIntent."""

    client_secret: str
    publishable_key: str | None
    js_url: str

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": "stripe",
            "client_secret": self.client_secret,
            "publishable_key": self.publishable_key,
            "js_url": self.js_url,
        }


@dataclass(frozen=True)
class SavedCard:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    default: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "brand": self.brand,
            "last4": self.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "default": self.default,
        }


class WebhookSignatureInvalid(CheckoutError):
    """A webhook whose ``Stripe-Signature`` does not verify (or is too old), or a signed
    body that is no event."""

    default_status = 400


class StripePaymentProvider:
    name = "stripe"

    def __init__(self, config: StripeConfig, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.config = config
        self.timeout_s = config.timeout_s
        self.sessions = sessions
        self._http = stripe.HTTPXClient(timeout=config.timeout_s / 2)
        self._stripe = stripe.StripeClient(
            config.secret_key,
            base_addresses={"api": config.api_base},
            http_client=self._http,
            max_network_retries=0,  # a retry is liveshop's, from its SQL rows
        )

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    # -- the port ------------------------------------------------------------------------

    def mint_ref(self) -> None:
        """Stripe names its PaymentIntents: the id is recorded once it exists."""
        return None

    async def charge(self, request: PaymentRequest, record_ref: RecordRef) -> Charge:
        found = await self._method_of(request)
        if isinstance(found, Charge):
            return found  # FAILED: no usable payment method
        customer, method = found
        ref = await self._create(request, customer, method)
        if not isinstance(ref, str):
            return ref
        try:
            go_on = await record_ref(ref)
        except BaseException:
            await self._cancel_quietly(ref)
            raise
        if not go_on:
            await self._cancel_quietly(ref)
            return Charge(PaymentState.NONE, ref=ref)
        return await self._confirm(ref)

    async def lookup(self, attempt_id: str, ref: str | None) -> Charge:
        if ref is None:
            return Charge(PaymentState.NONE)  # never confirmed: its id never reached SQL
        try:
            intent = await self._stripe.v1.payment_intents.retrieve_async(ref)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return Charge(PaymentState.NONE, ref=ref)
            return self._unknown(ref, exc, "lookup")
        except stripe.StripeError as exc:
            return self._unknown(ref, exc, "lookup")
        return _charge_of(intent)

    async def cancel(self, attempt_id: str, ref: str | None) -> Charge:
        if ref is None:
            return Charge(PaymentState.NONE)
        try:
            intent = await self._stripe.v1.payment_intents.retrieve_async(ref)
            if intent.status in _CANCELABLE:
                intent = await self._stripe.v1.payment_intents.cancel_async(ref)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return Charge(PaymentState.NONE, ref=ref)
            return await self.lookup(attempt_id, ref)  # (it moved on meanwhile: as it is now)
        except stripe.StripeError as exc:
            return self._unknown(ref, exc, "cancel")
        return _charge_of(intent)

    async def refund(self, ref: str, *, amount_minor: int, idempotency_key: str) -> None:
        if amount_minor <= 0:
            raise PaymentError("refund_exceeds_payment", "a refund is at least 1 minor unit")
        try:
            await self._refund(ref, amount_minor, idempotency_key)
        except stripe.InvalidRequestError as exc:
            if exc.code == "charge_already_refunded":
                return
            raise PaymentError(
                "payment_not_refundable", f"Stripe refused the refund: {exc.user_message}"
            ) from None
        except _TRANSIENT:
            raise PaymentError(
                "payment_provider_unavailable", "Stripe did not answer the refund: retry"
            ) from None
        except stripe.StripeError as exc:
            raise self._ours(exc, "refund") from None

    # -- card on file ----------------------------------------------------------------------

    async def customer_of(self, buyer_id: str) -> PaymentCustomer | None:
        async with self.sessions() as session:
            return await session.get(PaymentCustomer, buyer_id)

    async def setup_card(self, buyer_id: str) -> CardSetup:
        """A SetupIntent (off-session use) for the buyer's Customer, made on first use."""
        try:
            customer = await self._ensure_customer(buyer_id)
            intent = await self._stripe.v1.setup_intents.create_async(
                {"customer": customer, "usage": "off_session", "metadata": {"buyer_id": buyer_id}}
            )
        except stripe.StripeError as exc:
            raise self._refused(exc, "setup") from None
        assert intent.client_secret is not None
        return CardSetup(intent.client_secret, self.config.publishable_key, self.config.js_url)

    async def save_card(self, buyer_id: str, payment_method_id: str) -> SavedCard:
        """Make ``payment_method_id`` (a card the page confirmed with the SetupIntent) the
        buyer's default: attached to their Customer if it is not yet."""
        try:
            customer = await self._ensure_customer(buyer_id)
            method = await self._own_method(customer, payment_method_id)
        except stripe.StripeError as exc:
            raise self._refused(exc, "save") from None
        if isinstance(method, Charge):
            raise PaymentError(method.reason or "payment_method_invalid", _why(method.reason))
        async with self.sessions.begin() as session:
            row = await session.get(PaymentCustomer, buyer_id)
            assert row is not None
            row.default_payment_method = method.id
        return _card_of(method, default=True)

    async def cards(self, buyer_id: str) -> list[SavedCard]:
        row = await self.customer_of(buyer_id)
        if row is None:
            return []
        try:
            found = await self._stripe.v1.payment_methods.list_async(
                {"customer": row.customer_id, "type": "card", "limit": 100}
            )
        except stripe.StripeError as exc:
            raise self._refused(exc, "cards") from None
        return [_card_of(m, default=m.id == row.default_payment_method) for m in found.data]

    # -- webhooks --------------------------------------------------------------------------

    def event_of(self, payload: bytes, signature: str | None) -> PaymentEvent | None:
        """The verified event in checkout's words; None for a type liveshop ignores.
        Raises WebhookSignatureInvalid for a bad, missing or too old signature."""
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self.config.webhook_secret, stripe.Webhook.DEFAULT_TOLERANCE
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookSignatureInvalid(
                "webhook_signature_invalid", f"the Stripe-Signature does not verify: {exc}"
            ) from None
        try:
            event = json.loads(payload)
            return event_from_json(event)
        except (ValueError, TypeError, KeyError, AttributeError):
            raise WebhookSignatureInvalid(
                "webhook_event_invalid", "a signed body that is no Stripe event"
            ) from None

    # -- steps -----------------------------------------------------------------------------

    async def _method_of(self, request: PaymentRequest) -> tuple[str, str] | Charge:
        """(the buyer's Customer, the payment method to charge), or a FAILED charge."""
        try:
            if request.payment_method == SAVED:
                row = await self.customer_of(request.buyer_id)
                if row is None or row.default_payment_method is None:
                    return _failed("payment_method_missing")
                return row.customer_id, row.default_payment_method
            if not request.payment_method.startswith("pm_"):
                return _failed("payment_method_invalid")
            customer = await self._ensure_customer(request.buyer_id)
            method = await self._own_method(customer, request.payment_method)
        except _TRANSIENT:
            return _failed("payment_provider_unavailable")
        except stripe.StripeError as exc:
            return self._failed_by(exc, "payment method")
        if isinstance(method, Charge):
            return method
        return customer, method.id

    async def _create(self, request: PaymentRequest, customer: str, method: str) -> str | Charge:
        params: Any = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "customer": customer,
            "payment_method": method,
            "confirm": False,
            "metadata": {"attempt_id": request.attempt_id, "buyer_id": request.buyer_id},
        }
        try:
            intent = await self._stripe.v1.payment_intents.create_async(
                params, {"idempotency_key": f"create-{request.attempt_id}"}
            )
        except _TRANSIENT:
            return _failed("payment_provider_unavailable")  # nothing confirmed: no charge
        except stripe.StripeError as exc:
            return self._failed_by(exc, "create")
        return intent.id

    async def _confirm(self, ref: str) -> Charge:
        try:
            intent = await self._stripe.v1.payment_intents.confirm_async(
                ref, {"off_session": True}, {"idempotency_key": f"confirm-{ref}"}
            )
        except stripe.CardError as exc:
            if exc.code == _AUTHENTICATION:
                return await self._needs_action(ref)
            return Charge(PaymentState.FAILED, ref=ref, reason="payment_declined")
        except _TRANSIENT as exc:
            return self._unknown(ref, exc, "confirm")
        except stripe.InvalidRequestError:
            return Charge(PaymentState.FAILED, ref=ref, reason="payment_method_invalid")
        except stripe.StripeError as exc:
            return self._unknown(ref, exc, "confirm")
        return _charge_of(intent)

    async def _needs_action(self, ref: str) -> Charge:
        """Stripe's off-session answer for a card that needs 3-D Secure: the page confirms
        the same PaymentIntent with its client secret."""
        try:
            intent = await self._stripe.v1.payment_intents.retrieve_async(ref)
        except stripe.StripeError as exc:
            return self._unknown(ref, exc, "confirm")
        return Charge(PaymentState.REQUIRES_ACTION, ref=ref, client_secret=intent.client_secret)

    async def _cancel_quietly(self, ref: str) -> None:
        try:
            await self._stripe.v1.payment_intents.cancel_async(ref)
        except stripe.StripeError:
            # Never confirmed, so it cannot charge; Stripe cancels it in time anyway.
            log.warning("could not cancel an unconfirmed PaymentIntent", extra={"ref": ref})

    async def _refund(self, ref: str, amount_minor: int, idempotency_key: str) -> None:
        intent = await self._stripe.v1.payment_intents.retrieve_async(
            ref, {"expand": ["latest_charge"]}
        )
        charge = intent.latest_charge
        if intent.status != "succeeded" or charge is None or isinstance(charge, str):
            raise PaymentError("payment_not_refundable", "the payment took no money to refund")
        refunds = await self._stripe.v1.refunds.list_async({"charge": charge.id, "limit": 100})
        if any(_key_of(r) == idempotency_key for r in refunds.data):
            return  # this key's refund is there already
        left = charge.amount - charge.amount_refunded
        if left <= 0:
            return  # refunded whole already
        if amount_minor > left:
            raise PaymentError(
                "refund_exceeds_payment", f"only {left} minor units are left to refund"
            )
        await self._stripe.v1.refunds.create_async(
            {
                "payment_intent": ref,
                "amount": amount_minor,
                "metadata": {"liveshop_key": idempotency_key},
            },
            {"idempotency_key": idempotency_key},
        )

    async def _ensure_customer(self, buyer_id: str) -> str:
        """The buyer's Customer id: the one in SQL, or a new one (two first calls racing
        keep the one SQL took; the other Customer is deleted)."""
        row = await self.customer_of(buyer_id)
        if row is not None:
            return row.customer_id
        made = await self._stripe.v1.customers.create_async({"metadata": {"buyer_id": buyer_id}})
        async with self.sessions.begin() as session:
            dialect: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            await session.execute(
                dialect.insert(PaymentCustomer)
                .values(buyer_id=buyer_id, customer_id=made.id)
                .on_conflict_do_nothing(index_elements=["buyer_id"])
            )
            kept = await session.scalar(
                select(PaymentCustomer.customer_id).where(PaymentCustomer.buyer_id == buyer_id)
            )
        assert kept is not None
        if kept != made.id:
            try:
                await self._stripe.v1.customers.delete_async(made.id)
            except stripe.StripeError:
                log.warning("could not delete a spare Customer", extra={"customer": made.id})
        return kept

    async def _own_method(self, customer: str, method_id: str) -> stripe.PaymentMethod | Charge:
        """The buyer's card ``method_id``: attached to ``customer`` (now, if it was free), or
        a FAILED charge (another customer's, not a card, unknown, declined on attach)."""
        try:
            method = await self._stripe.v1.payment_methods.retrieve_async(method_id)
        except stripe.InvalidRequestError:
            return _failed("payment_method_invalid")
        if method.type != "card":
            return _failed("payment_method_invalid")
        owner = method.customer if isinstance(method.customer, str | None) else method.customer.id
        if owner is None:
            try:
                method = await self._stripe.v1.payment_methods.attach_async(
                    method_id, {"customer": customer}
                )
            except stripe.CardError:
                return _failed("payment_declined")
        elif owner != customer:
            return _failed("payment_method_invalid")
        return method

    # -- errors ----------------------------------------------------------------------------

    def _unknown(self, ref: str, exc: stripe.StripeError, step: str) -> Charge:
        """Stripe may or may not have acted: PENDING, the caller looks it up later."""
        log.warning(
            "Stripe did not answer",
            extra={"step": step, "ref": ref, "error": type(exc).__name__},
        )
        return Charge(PaymentState.PENDING, ref=ref)

    def _failed_by(self, exc: stripe.StripeError, step: str) -> Charge:
        if isinstance(exc, _OURS):
            self._ours(exc, step)
            return _failed("payment_provider_error")
        if isinstance(exc, stripe.CardError):
            return _failed("payment_declined")
        return _failed("payment_method_invalid")

    def _refused(self, exc: stripe.StripeError, step: str) -> PaymentError:
        if isinstance(exc, _TRANSIENT):
            return PaymentError("payment_provider_unavailable", "Stripe did not answer: retry")
        if isinstance(exc, stripe.CardError):
            return PaymentError("payment_declined", "the card was declined")
        if isinstance(exc, _OURS):
            return self._ours(exc, step)
        return PaymentError("payment_method_invalid", "Stripe refused the payment method")

    def _ours(self, exc: stripe.StripeError, step: str) -> PaymentError:
        log.error(
            "Stripe refused liveshop's request",
            extra={"step": step, "error": type(exc).__name__, "status": exc.http_status},
        )
        return PaymentError(
            "payment_provider_error", "the payment provider refused the shop's request"
        )


def event_from_json(event: dict[str, Any]) -> PaymentEvent | None:
    """A Stripe event (its JSON) in checkout's words, or None when liveshop ignores it."""
    try:
        kind = PaymentEventKind(event["type"])
    except ValueError:
        return None
    obj = event["data"]["object"]
    metadata = obj.get("metadata") or {}
    if kind is PaymentEventKind.REFUNDED:
        ref = obj.get("payment_intent")
        if not isinstance(ref, str):
            return None  # a charge made without a PaymentIntent: none of liveshop's
        return PaymentEvent(
            event_id=str(event["id"]),
            kind=kind,
            ref=ref,
            attempt_id=metadata.get("attempt_id"),
            amount_minor=int(obj.get("amount", 0)),
            amount_refunded_minor=int(obj.get("amount_refunded", 0)),
            refunded=bool(obj.get("refunded", False)),
        )
    error = obj.get("last_payment_error") or {}
    return PaymentEvent(
        event_id=str(event["id"]),
        kind=kind,
        ref=str(obj["id"]),
        attempt_id=metadata.get("attempt_id"),
        amount_minor=int(obj.get("amount", 0)),
        reason=error.get("decline_code") or error.get("code"),
    )


def _charge_of(intent: stripe.PaymentIntent) -> Charge:
    status = intent.status
    if status == "succeeded":
        return Charge(PaymentState.SUCCEEDED, ref=intent.id)
    if status == "requires_action":
        return Charge(
            PaymentState.REQUIRES_ACTION, ref=intent.id, client_secret=intent.client_secret
        )
    if status in ("processing", "requires_capture"):
        return Charge(PaymentState.PENDING, ref=intent.id)
    if status == "requires_payment_method" and intent.last_payment_error is not None:
        if intent.last_payment_error.code == _AUTHENTICATION:
            return Charge(
                PaymentState.REQUIRES_ACTION, ref=intent.id, client_secret=intent.client_secret
            )
        return Charge(PaymentState.FAILED, ref=intent.id, reason="payment_declined")
    return Charge(PaymentState.NONE, ref=intent.id)  # requires_confirmation, canceled, ...


def _card_of(method: stripe.PaymentMethod, *, default: bool) -> SavedCard:
    card = method.card
    assert card is not None
    return SavedCard(method.id, card.brand, card.last4, card.exp_month, card.exp_year, default)


def _key_of(refund: stripe.Refund) -> str | None:
    metadata: Any = refund.metadata
    found = metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata or {})
    key = found.get("liveshop_key")
    return key if isinstance(key, str) else None


def _failed(reason: str) -> Charge:
    return Charge(PaymentState.FAILED, reason=reason)


_WHY = {
    "payment_method_missing": "no saved card: save one first",
    "payment_declined": "the card was declined",
    "payment_method_invalid": "not a card of this buyer",
}


def _why(reason: str | None) -> str:
    return _WHY.get(reason or "", "the payment method was refused")
