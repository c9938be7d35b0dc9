"""What the Stripe tests share: localstripe's keys, and the page's part of saving a card
(what Stripe.js does with a SetupIntent's client secret), done over HTTP as the page does."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import stripe

SECRET_KEY = "sk_test_liveshop"
PUBLISHABLE_KEY = "pk_test_liveshop"
WEBHOOK_SECRET = "whsec_test_liveshop"

OK_CARD = "4242424242424242"
DECLINED_ON_SAVE = "4000000000000002"  # declined when attached (saved), as Stripe does
DECLINED_ON_CHARGE = "4000000000000341"  # saves, then every charge is declined
NEEDS_3DS = "4000002500003155"  # 3-D Secure on setup and on every charge


def card(number: str) -> dict[str, Any]:
    return {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}


async def confirm_setup_as_page(base: str, client_secret: str, number: str) -> httpx.Response:
    """Stripe.js ``confirmCardSetup``: the card goes to Stripe with the publishable key and
    the SetupIntent's client secret (never through liveshop); a 3-D Secure card is
    confirmed a second time, as the fake Stripe.js does once the buyer completes it."""
    setup_id = client_secret.split("_secret_")[0]
    url = f"{base}/v1/setup_intents/{setup_id}/confirm"
    body = {"key": PUBLISHABLE_KEY, "use_stripe_sdk": True, "client_secret": client_secret}
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            url, json={**body, "payment_method_data": {"type": "card", "card": card(number)}}
        )
        if resp.status_code == 200 and resp.json()["status"] == "requires_action":
            resp = await http.post(url, json=body)
    return resp


async def authenticate_as_page(base: str, client_secret: str, *, success: bool) -> None:
    """Stripe.js ``confirmCardPayment`` on a PaymentIntent that needs 3-D Secure (the fake
    Stripe.js's own call: the buyer completed or failed the challenge)."""
    intent = client_secret.split("_secret_")[0]
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            f"{base}/v1/payment_intents/{intent}/_authenticate?success={str(success).lower()}",
            json={"key": PUBLISHABLE_KEY, "client_secret": client_secret},
        )
    assert resp.status_code == 200, resp.text


@contextlib.asynccontextmanager
async def stripe_client(base: str) -> AsyncIterator[stripe.StripeClient]:
    """A Stripe client of the test's own, to read what localstripe holds."""
    http = stripe.HTTPXClient(timeout=10)
    try:
        yield stripe.StripeClient(
            SECRET_KEY, base_addresses={"api": base}, http_client=http, max_network_retries=0
        )
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


def signature(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A ``Stripe-Signature`` header as Stripe writes it: ``t=<unix time>,v1=<HMAC-SHA256
    of "<t>.<payload>" with the endpoint's secret, hex>``."""
    when = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{when}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={when},v1={mac}"
