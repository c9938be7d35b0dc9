"""The webhooks' admin API on a running app (its lifespan runs the deliverer), against a
real receiver on 127.0.0.1: register, list, change, rotate, delete, the deliveries' log,
replay; refusals are coded and change nothing; every field at its limit fits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from standardwebhooks import Webhook
from starlette.applications import Starlette

from tests.checkout.conftest import wait_until
from tests.conftest import admin_headers, make_settings
from tests.webhooks.receiver import Received, receiving
from web.app import create_app
from web.parts import parts
from webhooks.events import EVENT_TYPES
from webhooks.models import WebhookEndpoint

BASE = "/api/webhooks"


@pytest.fixture
async def client(
    tmp_path: Path, db_url: str, redis_url: str, redis_client: aioredis.Redis
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        tmp_path,
        db_url,
        redis_url,
        webhook_allow_private=True,
        webhook_timeout_s=1,
        webhook_retry_schedule_s="0, 0.3",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


def _app(client: httpx.AsyncClient) -> Starlette:
    app: Starlette = client.app  # type: ignore[attr-defined]
    return app


async def _register(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    resp = await client.post(f"{BASE}/endpoints", json=body, headers=admin_headers())
    assert resp.status_code == 201, resp.text
    endpoint: dict[str, Any] = resp.json()
    return endpoint


async def _show(client: httpx.AsyncClient) -> str:
    resp = await client.post("/api/shows", json={"title": "Drop"}, headers=admin_headers())
    assert resp.status_code == 201, resp.text
    show_id: str = resp.json()["id"]
    return show_id


async def _deliveries(client: httpx.AsyncClient, query: str = "") -> dict[str, Any]:
    resp = await client.get(f"{BASE}/deliveries{query}", headers=admin_headers())
    assert resp.status_code == 200, resp.text
    page: dict[str, Any] = resp.json()
    return page


async def test_a_show_going_live_reaches_the_endpoint_signed(client: httpx.AsyncClient) -> None:
    answers = iter([500])

    def answer(r: Received) -> int:
        return next(answers, 200)  # the first attempt fails, the retry succeeds

    async with receiving(answer) as receiver:
        endpoint = await _register(
            client, url=receiver.url, event_types=["show.started"], description="OMS"
        )
        assert endpoint["secret"].startswith("whsec_") and len(endpoint["secret"]) == 50
        assert endpoint["event_types"] == ["show.started"] and endpoint["enabled"] is True
        show = await _show(client)
        resp = await client.post(f"/api/shows/{show}/start", headers=admin_headers())
        assert resp.status_code == 200
        await client.post(f"/api/shows/{show}/end", headers=admin_headers())  # not wanted
        page = await wait_until(
            lambda: _deliveries(client, "?state=delivered"),
            lambda page: len(page["deliveries"]) == 1,
            10,
        )
    (delivery,) = page["deliveries"]
    assert delivery["endpoint_id"] == endpoint["id"] and delivery["attempts"] == 2
    assert delivery["last_status"] == 200 and delivery["delivered_at"] is not None
    assert [r.answered for r in receiver.requests] == [500, 200]
    for request in receiver.requests:
        event = Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert event["type"] == "show.started" and event["data"]["show_id"] == show
        assert request.headers["webhook-id"] == delivery["message_id"]


async def test_manage_endpoints(client: httpx.AsyncClient) -> None:
    one = await _register(client, url="https://oms.example/hooks")
    two = await _register(client, url="http://127.0.0.1:9/x", event_types=["order.paid"])
    resp = await client.get(f"{BASE}/endpoints", headers=admin_headers())
    listed = resp.json()["endpoints"]
    assert [e["id"] for e in listed] == [one["id"], two["id"]]
    assert all("secret" not in e for e in listed) and listed[0]["event_types"] is None
    resp = await client.patch(
        f"{BASE}/endpoints/{two['id']}",
        json={"enabled": False, "event_types": ["deal.ended", "deal.started", "deal.ended"]},
        headers=admin_headers(),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["enabled"] is False
    assert resp.json()["event_types"] == ["deal.ended", "deal.started"]
    assert resp.json()["url"] == "http://127.0.0.1:9/x"  # what was not given stays
    resp = await client.patch(
        f"{BASE}/endpoints/{two['id']}", json={"event_types": None}, headers=admin_headers()
    )
    assert resp.json()["event_types"] is None and resp.json()["enabled"] is False
    resp = await client.post(f"{BASE}/endpoints/{one['id']}/rotate-secret", headers=admin_headers())
    assert resp.status_code == 200
    assert resp.json()["secret"].startswith("whsec_") and resp.json()["secret"] != one["secret"]
    resp = await client.delete(f"{BASE}/endpoints/{one['id']}", headers=admin_headers())
    assert resp.status_code == 204
    resp = await client.get(f"{BASE}/endpoints/{one['id']}", headers=admin_headers())
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "webhook_endpoint_not_found"
    resp = await client.get(f"{BASE}/endpoints/{two['id']}", headers=admin_headers())
    assert resp.status_code == 200 and "secret" not in resp.json()


async def _endpoint_rows(client: httpx.AsyncClient) -> int:
    async with parts(_app(client)).resources.sessions() as session:
        return int(await session.scalar(select(func.count(WebhookEndpoint.id))) or 0)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://oms.example/x"}, "webhook_url_invalid"),
        ({"url": "https://"}, "webhook_url_invalid"),
        ({"url": "https://user:pw@oms.example/x"}, "webhook_url_invalid"),
        ({"url": "https://oms.example:99999/x"}, "webhook_url_invalid"),
        ({"url": "https://oms.example/a b"}, "webhook_url_invalid"),
        ({"url": "https://oms.example/" + "x" * 982}, "invalid_input"),
        ({"url": "https://oms.example/x", "event_types": ["order.lost"]}, "unknown_event_type"),
        ({"url": "https://oms.example/x", "event_types": []}, "invalid_input"),
        ({"url": "https://oms.example/x", "description": "d" * 501}, "invalid_input"),
        ({"url": "https://oms.example/x", "secret": "whsec_mine"}, "invalid_input"),
    ],
)
async def test_bad_endpoints_are_refused_with_a_code(
    client: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    resp = await client.post(f"{BASE}/endpoints", json=body, headers=admin_headers())
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == code
    assert await _endpoint_rows(client) == 0


async def test_private_addresses_are_refused_by_default(
    tmp_path: Path, db_url: str, redis_url: str, redis_client: aioredis.Redis
) -> None:
    app = create_app(make_settings(tmp_path, db_url, redis_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for url in (
                "http://127.0.0.1:8080/x",
                "http://localhost/x",
                "http://10.0.0.7/x",
                "http://169.254.169.254/latest/meta-data",
                "http://[::1]/x",
                "http://[::ffff:127.0.0.1]/x",
            ):
                resp = await http.post(
                    f"{BASE}/endpoints", json={"url": url}, headers=admin_headers()
                )
                assert resp.status_code == 422, url
                assert resp.json()["error"]["code"] == "webhook_url_private", url
            assert (await _register(http, url="https://oms.example/x"))["enabled"]


async def test_admin_only(client: httpx.AsyncClient) -> None:
    viewer = (await client.post("/api/viewers", json={"name": "Vera"})).json()["token"]
    for method, path in (
        ("GET", f"{BASE}/endpoints"),
        ("POST", f"{BASE}/endpoints"),
        ("PATCH", f"{BASE}/endpoints/ep_x"),
        ("DELETE", f"{BASE}/endpoints/ep_x"),
        ("POST", f"{BASE}/endpoints/ep_x/rotate-secret"),
        ("GET", f"{BASE}/deliveries"),
        ("POST", f"{BASE}/deliveries/dlv_x/replay"),
    ):
        resp = await client.request(method, path, json={"url": "https://oms.example/x"})
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "auth_missing"
        resp = await client.request(
            method, path, headers={"Authorization": f"Bearer {viewer}"}, json={}
        )
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden_role"
    assert await _endpoint_rows(client) == 0


async def test_deliveries_page_newest_first_and_replay(client: httpx.AsyncClient) -> None:
    async with receiving(lambda r: 200) as receiver:
        endpoint = await _register(client, url=receiver.url, event_types=["show.started"])
        other = await _register(client, url=receiver.url + "/other", enabled=False)
        shows = [await _show(client) for _ in range(3)]
        for show in shows:
            await client.post(f"/api/shows/{show}/start", headers=admin_headers())
        await wait_until(
            lambda: _deliveries(client, f"?endpoint={endpoint['id']}&state=delivered"),
            lambda page: len(page["deliveries"]) == 3,
            10,
        )
        first = await _deliveries(client, f"?endpoint={endpoint['id']}&limit=2")
        assert len(first["deliveries"]) == 2 and first["next"] == first["deliveries"][1]["id"]
        rest = await _deliveries(
            client, f"?endpoint={endpoint['id']}&limit=2&before={first['next']}"
        )
        assert len(rest["deliveries"]) == 1 and rest["next"] is None
        paged = first["deliveries"] + rest["deliveries"]
        created = [d["created_at"] for d in paged]
        assert created == sorted(created, reverse=True)
        waiting = await _deliveries(client, f"?endpoint={other['id']}")
        assert waiting["deliveries"] == []  # disabled: it gets no events
        oldest = paged[-1]
        resp = await client.post(
            f"{BASE}/deliveries/{oldest['id']}/replay", headers=admin_headers()
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["state"] == "delivered" and resp.json()["attempts"] == 2
    assert receiver.ids().count(oldest["message_id"]) == 2
    assert len(receiver.requests) == 4
    resp = await client.post(f"{BASE}/deliveries/dlv_none/replay", headers=admin_headers())
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "webhook_delivery_not_found"
    for query in ("?state=lost", "?limit=0", "?limit=101", "?limit=x", "?endpoint=" + "e" * 41):
        resp = await client.get(f"{BASE}/deliveries{query}", headers=admin_headers())
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_input", query


async def test_every_field_at_its_limit_fits(client: httpx.AsyncClient) -> None:
    url = "https://oms.example/" + "x" * (1000 - len("https://oms.example/"))
    every = sorted(EVENT_TYPES)
    endpoint = await _register(client, url=url, event_types=every, description="d" * 500)
    assert endpoint["url"] == url and endpoint["event_types"] == every
    resp = await client.get(f"{BASE}/endpoints/{endpoint['id']}", headers=admin_headers())
    assert resp.json()["description"] == "d" * 500
