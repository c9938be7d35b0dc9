"""The payment provider's HTTP side: which provider is on, a viewer's saved cards (card on
file, Stripe only) and Stripe's inbound webhook. The provider itself is built here from
the settings (``make_payment_provider``), for ``web/checkout_api.open_checkout``.

| method and path | who | what |
|---|---|---|
| ``GET /api/payments/config`` | anyone | ``{provider, publishable_key, js_url}`` |
| ``POST /api/payment-methods/setup`` | viewer | a SetupIntent's ``client_secret``, and Stripe.js |
| ``POST /api/payment-methods`` ``{payment_method_id}`` | viewer | the card becomes the default |
| ``GET /api/payment-methods`` | viewer | ``{cards}``: brand, last4, expiry, default |
| ``POST /api/payments/stripe/webhook`` | Stripe (signed) | verified, applied once per event id |
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from checkout.errors import Conflict
from checkout.payment_models import PROVIDER_ID_LENGTH
from checkout.payments import PaymentProvider
from checkout.stripe_payments import StripeConfig, StripePaymentProvider
from config import Settings
from core.roles import Role
from web.auth import AuthError, Principal, bearer
from web.http import json_body, read_body
from web.parts import parts
from web.schemas import Strict

log = logging.getLogger("liveshop.payments")


def provider_timeout_s(settings: Settings) -> float:
    """How long a buy waits for the provider: half the payment hold, at most 10 s."""
    return min(10.0, settings.payment_hold_s / 2)


def make_payment_provider(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> PaymentProvider:
    """The Stripe provider the settings describe (``LIVESHOP_PAYMENT_PROVIDER=stripe``)."""
    assert settings.stripe_secret_key is not None  # (the settings refuse stripe without it)
    provider = StripePaymentProvider(
        StripeConfig(
            secret_key=settings.stripe_secret_key,
            publishable_key=settings.stripe_publishable_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base.rstrip("/"),
            js_url=settings.stripe_js_url,
            timeout_s=provider_timeout_s(settings),
        ),
        sessions,
    )
    return provider


def closer(payments: object) -> Callable[[], Awaitable[None]]:
    """What closes the provider at shutdown (Stripe's HTTP connections)."""
    if isinstance(payments, StripePaymentProvider):
        return payments.aclose

    async def nothing() -> None:
        return None

    return nothing


class PaymentMethodIn(Strict):
    payment_method_id: str = Field(min_length=1, max_length=PROVIDER_ID_LENGTH)


def _stripe(request: Request) -> StripePaymentProvider:
    provider: object = parts(request.app).checkout.payments
    if not isinstance(provider, StripePaymentProvider):
        raise Conflict(
            "payment_provider_unsupported",
            "saved cards and Stripe webhooks need LIVESHOP_PAYMENT_PROVIDER=stripe",
        )
    return provider


def _viewer(request: Request) -> Principal:
    principal = parts(request.app).tokens.verify(bearer(request.headers.get("authorization")))
    if principal.role is not Role.VIEWER:
        raise AuthError("forbidden_role", f"a {principal.role} has no saved cards")
    return principal


async def payment_config(request: Request) -> Response:
    settings = parts(request.app).settings
    stripe = settings.payment_provider == "stripe"
    return JSONResponse(
        {
            "provider": settings.payment_provider,
            "publishable_key": settings.stripe_publishable_key if stripe else None,
            "js_url": settings.stripe_js_url if stripe else None,
        }
    )


async def setup_card(request: Request) -> Response:
    viewer = _viewer(request)
    setup = await _stripe(request).setup_card(viewer.user_id)
    return JSONResponse(setup.to_json(), status_code=201)


async def save_card(request: Request) -> Response:
    viewer = _viewer(request)
    provider = _stripe(request)
    body = await json_body(request, PaymentMethodIn)
    card = await provider.save_card(viewer.user_id, body.payment_method_id)
    return JSONResponse(card.to_json(), status_code=201)


async def list_cards(request: Request) -> Response:
    viewer = _viewer(request)
    cards = await _stripe(request).cards(viewer.user_id)
    return JSONResponse({"cards": [card.to_json() for card in cards]})


async def stripe_webhook(request: Request) -> Response:
    """Stripe retries until it hears a 2xx: a verified duplicate answers 200 too."""
    provider = _stripe(request)
    payload = await read_body(request, parts(request.app).settings.max_body_bytes)
    event = provider.event_of(payload, request.headers.get("stripe-signature"))
    if event is None:
        return JSONResponse({"received": True, "handled": False})
    applied = await parts(request.app).checkout.payment_event(event)
    return JSONResponse({"received": True, "handled": True, "duplicate": not applied})


def routes() -> list[Route]:
    return [
        Route("/api/payments/config", payment_config, methods=["GET"]),
        Route("/api/payments/stripe/webhook", stripe_webhook, methods=["POST"]),
        Route("/api/payment-methods/setup", setup_card, methods=["POST"]),
        Route("/api/payment-methods", save_card, methods=["POST"]),
        Route("/api/payment-methods", list_cards, methods=["GET"]),
    ]
