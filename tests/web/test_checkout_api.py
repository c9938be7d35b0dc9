"""The viewer's checkout routes over HTTP, on both databases and real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette

from checkout.inventory import stock_key
from core.roles import Role
from tests.conftest import admin_headers
from web.parts import parts


async def _live_show(client: httpx.AsyncClient) -> tuple[str, str, str]:
    show = (await client.post("/api/shows", json={"title": "Drop"}, headers=admin_headers())).json()
    product = {
        "name": "Sneaker",
        "variants": [
            {"sku": "S-42", "price": {"amount": 12900, "currency": "EUR"}, "stock": 2},
            {"sku": "S-43", "price": {"amount": 12900, "currency": "EUR"}, "stock": 0},
        ],
    }
    resp = await client.post(
        f"/api/shows/{show['id']}/products", json=product, headers=admin_headers()
    )
    assert resp.status_code == 201, resp.text
    variants = [v["id"] for v in resp.json()["variants"]]
    await client.post(f"/api/shows/{show['id']}/start", headers=admin_headers())
    return show["id"], variants[0], variants[1]


async def _viewer(client: httpx.AsyncClient, name: str = "Vera") -> dict[str, str]:
    token = (await client.post("/api/viewers", json={"name": name})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def test_buy_is_idempotent_over_http(client: httpx.AsyncClient, app: Starlette) -> None:
    show, v42, _ = await _live_show(client)
    viewer = await _viewer(client)
    body = {"variant_id": v42, "quantity": 1, "payment_method": "pm_card_ok"}
    first = await client.post(
        f"/api/shows/{show}/buy", json=body, headers={**viewer, "Idempotency-Key": "t1"}
    )
    assert first.status_code == 201, first.text
    order = first.json()
    assert order["status"] == "paid"
    assert order["total"] == {"amount": 12900, "currency": "EUR"}
    again = await client.post(
        f"/api/shows/{show}/buy", json=body, headers={**viewer, "Idempotency-Key": "t1"}
    )
    assert again.status_code == 200 and again.json()["order_id"] == order["order_id"]
    other = await client.post(
        f"/api/shows/{show}/buy",
        json={**body, "quantity": 2},
        headers={**viewer, "Idempotency-Key": "t1"},
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    stats = await parts(app).checkout.stats(show)
    assert stats == {"orders": 1, "revenue_minor": 12900, "units_sold": 1}


async def test_buy_refusals(client: httpx.AsyncClient, app: Starlette) -> None:
    show, v42, v43 = await _live_show(client)
    viewer = await _viewer(client)
    url = f"/api/shows/{show}/buy"
    body = {"variant_id": v42, "quantity": 1, "payment_method": "pm_card_ok"}
    assert (await client.post(url, json=body)).status_code == 401
    resp = await client.post(url, json=body, headers=viewer)
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "idempotency_key_missing"
    resp = await client.post(
        url, json={**body, "quantity": "1"}, headers={**viewer, "Idempotency-Key": "a"}
    )
    assert resp.status_code == 422 and resp.json()["error"]["fields"] == {
        "quantity": "Input should be a valid integer"
    }
    resp = await client.post(
        url, json={**body, "quantity": 0}, headers={**viewer, "Idempotency-Key": "a"}
    )
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_quantity"
    resp = await client.post(
        url, json={**body, "variant_id": v43}, headers={**viewer, "Idempotency-Key": "a"}
    )
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "sold_out"
    resp = await client.post(
        url,
        json={**body, "payment_method": "4000000000000002"},
        headers={**viewer, "Idempotency-Key": "b"},
    )
    assert resp.status_code == 402 and resp.json()["error"]["code"] == "payment_declined"
    assert await parts(app).checkout.stats(show) == {
        "orders": 0,
        "revenue_minor": 0,
        "units_sold": 0,
    }
    assert await parts(app).checkout.availability([v42, v43]) == {v42: 2, v43: 0}


async def test_cart_notify_deal_and_restock(client: httpx.AsyncClient, app: Starlette) -> None:
    show, v42, v43 = await _live_show(client)
    viewer = await _viewer(client)
    cart = f"/api/shows/{show}/cart"
    resp = await client.post(cart, json={"variant_id": v42, "quantity": 1}, headers=viewer)
    assert resp.status_code == 200, resp.text
    resp = await client.patch(f"{cart}/{v42}", json={"quantity": 2}, headers=viewer)
    assert [(line["variant_id"], line["quantity"]) for line in resp.json()["lines"]] == [(v42, 2)]
    resp = await client.get(cart, headers=viewer)
    assert resp.json()["total"] == {"amount": 25800, "currency": "EUR"}
    resp = await client.post(
        f"{cart}/checkout",
        json={"payment_method": "pm_card_ok"},
        headers={**viewer, "Idempotency-Key": "c1"},
    )
    assert resp.status_code == 201, resp.text
    assert (await client.get(cart, headers=viewer)).json()["lines"] == []

    resp = await client.post(f"/api/shows/{show}/notify", json={"variant_id": v43}, headers=viewer)
    assert resp.status_code == 202
    resp = await client.put(
        f"/api/variants/{v43}/stock", json={"stock": 7}, headers=admin_headers()
    )
    assert resp.status_code == 200 and resp.json()["available"] == 7
    assert await parts(app).checkout.redis.hget(stock_key(v43), "avail") == "7"

    deal = {
        "price_minor": 9900,
        "units": 3,
        "ends_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
        "per_buyer_limit": 1,
    }
    resp = await client.post(f"/api/shows/{show}/deals/{v43}", json=deal, headers=viewer)
    assert resp.status_code == 403
    host = parts(app).tokens.issue(Role.HOST, name="Hana", show_id=show)
    host_headers = {"Authorization": f"Bearer {host}"}
    resp = await client.post(f"/api/shows/{show}/deals/{v43}", json=deal, headers=host_headers)
    assert resp.status_code == 201, resp.text
    assert resp.json()["price"] == {"amount": 9900, "currency": "EUR"}
    deals = (await client.get(f"/api/shows/{show}/deals")).json()["deals"]
    assert [(d["variant_id"], d["units_left"]) for d in deals] == [(v43, 3)]
    resp = await client.delete(f"/api/shows/{show}/deals/{v43}", headers=host_headers)
    assert resp.status_code == 204
    assert (await client.get(f"/api/shows/{show}/deals")).json()["deals"] == []
