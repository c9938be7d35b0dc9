"""The payment routes over HTTP with the Stripe provider on a real localstripe, on both
databases: saved cards, the provider switch, and Stripe's webhook (signed, applied once),
delivered by localstripe itself to a served app too."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from checkout.models import Order, OrderStatus
from checkout.payment_models import ProviderEvent
from config import Settings
from core.db import make_engine, make_sessionmaker
from tests.checkout.conftest import wait_until
from tests.conftest import admin_headers, make_settings
from tests.stripe_support import (
    OK_CARD,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    confirm_setup_as_page,
    signature,
    stripe_client,
)
from tests.web.serving import liveshop_serve
from web.app import create_app
from web.parts import parts


def _stripe_env(localstripe_url: str) -> dict[str, str]:
    return {
        "payment_provider": "stripe",
        "stripe_secret_key": SECRET_KEY,
        "stripe_publishable_key": PUBLISHABLE_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": localstripe_url,
        "stripe_js_url": f"{localstripe_url}/js.stripe.com/v3/",
    }


@pytest.fixture
def stripe_settings(tmp_path: Path, db_url: str, redis_url: str, localstripe_url: str) -> Settings:
    return make_settings(tmp_path, db_url, redis_url, **_stripe_env(localstripe_url))


@pytest.fixture
async def stripe_http(
    stripe_settings: Settings, redis_client: aioredis.Redis
) -> AsyncIterator[tuple[httpx.AsyncClient, Starlette]]:
    app = create_app(stripe_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, app


async def _viewer(client: httpx.AsyncClient, name: str = "Vera") -> dict[str, str]:
    token = (await client.post("/api/viewers", json={"name": name})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def test_a_viewer_saves_a_card(
    stripe_http: tuple[httpx.AsyncClient, Starlette], localstripe_url: str
) -> None:
    client, _ = stripe_http
    config = (await client.get("/api/payments/config")).json()
    assert config == {
        "provider": "stripe",
        "publishable_key": PUBLISHABLE_KEY,
        "js_url": f"{localstripe_url}/js.stripe.com/v3/",
    }
    viewer = await _viewer(client)
    assert (await client.get("/api/payment-methods", headers=viewer)).json() == {"cards": []}
    setup = await client.post("/api/payment-methods/setup", headers=viewer)
    assert setup.status_code == 201, setup.text
    assert setup.json()["js_url"] == config["js_url"]
    confirmed = await confirm_setup_as_page(localstripe_url, setup.json()["client_secret"], OK_CARD)
    method = confirmed.json()["payment_method"]
    saved = await client.post(
        "/api/payment-methods", json={"payment_method_id": method}, headers=viewer
    )
    assert saved.status_code == 201, saved.text
    assert saved.json() == {
        "id": method, "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030,
        "default": True,
    }  # fmt: skip
    assert (await client.get("/api/payment-methods", headers=viewer)).json() == {
        "cards": [saved.json()]
    }
    # another viewer cannot take it
    other = await _viewer(client, "Otto")
    stolen = await client.post(
        "/api/payment-methods", json={"payment_method_id": method}, headers=other
    )
    assert stolen.status_code == 402 and stolen.json()["error"]["code"] == "payment_method_invalid"
    assert (await client.get("/api/payment-methods", headers=other)).json() == {"cards": []}


async def test_saved_card_refusals(stripe_http: tuple[httpx.AsyncClient, Starlette]) -> None:
    client, _ = stripe_http
    viewer = await _viewer(client)
    resp = await client.post("/api/payment-methods/setup")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "auth_missing"
    show = (await client.post("/api/shows", json={"title": "Drop"}, headers=admin_headers())).json()
    token = (
        await client.post(
            "/api/tokens", json={"role": "host", "name": "Hana", "show_id": show["id"]},
            headers=admin_headers(),
        )
    ).json()["token"]  # fmt: skip
    resp = await client.get("/api/payment-methods", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden_role"
    too_long = {"payment_method_id": "pm_" + "x" * 253}
    resp = await client.post("/api/payment-methods", json=too_long, headers=viewer)
    assert resp.status_code == 422 and "payment_method_id" in resp.json()["error"]["fields"]
    at_most = {"payment_method_id": "pm_" + "x" * 252}  # the column's 255: Stripe knows none
    resp = await client.post("/api/payment-methods", json=at_most, headers=viewer)
    assert resp.status_code == 402 and resp.json()["error"]["code"] == "payment_method_invalid"


async def test_the_test_provider_has_no_saved_cards(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/payments/config")).json() == {
        "provider": "test", "publishable_key": None, "js_url": None,
    }  # fmt: skip
    viewer = await _viewer(client)
    for method, path in [
        ("POST", "/api/payment-methods/setup"),
        ("GET", "/api/payment-methods"),
        ("POST", "/api/payments/stripe/webhook"),
    ]:
        resp = await client.request(method, path, headers=viewer)
        assert resp.status_code == 409, path
        assert resp.json()["error"]["code"] == "payment_provider_unsupported"


async def _order(app: Starlette, client: httpx.AsyncClient, ref: str) -> str:
    show = (await client.post("/api/shows", json={"title": "Drop"}, headers=admin_headers())).json()
    async with parts(app).resources.sessions.begin() as session:
        order = Order(
            show_id=show["id"], buyer_id="usr_v", total_minor=1290, currency="EUR",
            idempotency_key=f"k-{ref}", payment_ref=ref,
        )  # fmt: skip
        session.add(order)
        await session.flush()
        return order.id


async def _state(app: Starlette, order_id: str) -> tuple[OrderStatus, int]:
    async with parts(app).resources.sessions() as session:
        order = await session.get(Order, order_id)
        events = await session.scalar(select(func.count()).select_from(ProviderEvent))
    assert order is not None and events is not None
    return order.status, events


def _refund_event(event_id: str, ref: str, *, whole: bool = True) -> bytes:
    charge = {
        "id": "ch_1", "object": "charge", "amount": 1290, "payment_intent": ref,
        "amount_refunded": 1290 if whole else 290, "refunded": whole,
        "metadata": {"attempt_id": "pay_1"},
    }  # fmt: skip
    event = {"id": event_id, "object": "event", "type": "charge.refunded",
             "data": {"object": charge}}  # fmt: skip
    return json.dumps(event).encode()


async def test_a_signed_refund_event_refunds_its_order_once(
    stripe_http: tuple[httpx.AsyncClient, Starlette],
) -> None:
    client, app = stripe_http
    order = await _order(app, client, "pi_refunded")
    url = "/api/payments/stripe/webhook"
    payload = _refund_event("evt_1", "pi_refunded")
    forged = [
        {},
        {"Stripe-Signature": signature(payload, secret="whsec_someone_else")},
        {"Stripe-Signature": signature(payload, at=1_700_000_000)},  # too old (over 5 min)
        {"Stripe-Signature": signature(payload + b" ")},  # not this body
    ]
    for headers in forged:
        resp = await client.post(url, content=payload, headers=headers)
        assert resp.status_code == 400, headers
        assert resp.json()["error"]["code"] == "webhook_signature_invalid"
        assert await _state(app, order) == (OrderStatus.PAID, 0)

    partial = _refund_event("evt_0", "pi_refunded", whole=False)
    resp = await client.post(url, content=partial, headers={"Stripe-Signature": signature(partial)})
    assert resp.json() == {"received": True, "handled": True, "duplicate": False}
    assert await _state(app, order) == (OrderStatus.PAID, 1)

    signed = {"Stripe-Signature": signature(payload)}
    resp = await client.post(url, content=payload, headers=signed)
    assert resp.status_code == 200 and resp.json()["duplicate"] is False
    assert await _state(app, order) == (OrderStatus.REFUNDED, 2)
    async with parts(app).resources.sessions.begin() as session:  # were it to change since
        row = await session.get(Order, order)
        assert row is not None
        row.status = OrderStatus.PAID
    resp = await client.post(url, content=payload, headers=signed)  # Stripe retries
    assert resp.status_code == 200 and resp.json()["duplicate"] is True
    assert await _state(app, order) == (OrderStatus.PAID, 2)  # the retry changed nothing

    ignored = json.dumps({"id": "evt_2", "type": "customer.created", "data": {"object": {}}})
    resp = await client.post(
        url, content=ignored, headers={"Stripe-Signature": signature(ignored.encode())}
    )
    assert resp.json() == {"received": True, "handled": False}
    not_an_event = b"[1, 2]"
    resp = await client.post(
        url, content=not_an_event, headers={"Stripe-Signature": signature(not_an_event)}
    )
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "webhook_event_invalid"


async def _events_for(sessions: async_sessionmaker[AsyncSession], ref: str) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(select(ProviderEvent.type).where(ProviderEvent.ref == ref))
        return list(rows)


async def test_localstripe_delivers_its_webhooks_to_the_served_app(
    settings: Settings, tmp_path: Path, localstripe_url: str
) -> None:
    env = {f"LIVESHOP_{k.upper()}": v for k, v in _stripe_env(localstripe_url).items()}
    engine = make_engine(str(settings.database_url))
    hook = f"{localstripe_url}/_config/webhooks/liveshop-{tmp_path.name}"
    try:
        with liveshop_serve(settings, tmp_path, **env) as served:
            async with httpx.AsyncClient(timeout=10) as http:
                resp = await http.post(hook, json={
                    "url": f"{served.http}/api/payments/stripe/webhook",
                    "secret": WEBHOOK_SECRET,
                    "events": ["payment_intent.succeeded"],
                })  # fmt: skip
                assert resp.status_code == 200, resp.text
            async with stripe_client(localstripe_url) as stripe:
                customer = await stripe.v1.customers.create_async()
                intent = await stripe.v1.payment_intents.create_async(
                    {"amount": 500, "currency": "eur", "customer": customer.id,
                     "payment_method": "pm_card_visa", "metadata": {"attempt_id": "pay_ls"}}
                )  # fmt: skip
                await stripe.v1.payment_intents.confirm_async(intent.id)
            sessions = make_sessionmaker(engine)
            # localstripe sends it 1 s after the charge
            seen = await wait_until(lambda: _events_for(sessions, intent.id), bool, timeout_s=15)
            assert seen == ["payment_intent.succeeded"]
    finally:
        async with httpx.AsyncClient(timeout=10) as http:  # stop sending to this app
            await http.post(hook, json={"url": "http://127.0.0.1:9/", "secret": "x",
                                        "events": ["none"]})  # fmt: skip
        await engine.dispose()


async def test_the_viewer_page_may_load_stripe_js_only_when_stripe_is_on(
    stripe_http: tuple[httpx.AsyncClient, Starlette], client: httpx.AsyncClient,
    localstripe_url: str,
) -> None:  # fmt: skip
    stripe_page = (await stripe_http[0].get("/watch/shw_x")).headers["content-security-policy"]
    assert f"script-src 'self' {localstripe_url};" in stripe_page
    assert f"connect-src 'self' ws: wss: {localstripe_url} {localstripe_url};" in stripe_page
    test_page = (await client.get("/watch/shw_x")).headers["content-security-policy"]
    assert "script-src 'self';" in test_page and localstripe_url not in test_page
