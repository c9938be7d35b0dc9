"""A viewer's own orders across shows (``GET /api/orders``), on both databases and real
Redis: only the bearer's orders, newest first, a page at a time, coded refusals; and the
currencies a price may be in (ISO 4217, each with its minor unit)."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from core.currency import exponent, is_currency
from core.roles import Role
from tests.conftest import admin_headers
from web.orders_api import MY_ORDERS_LIMIT
from web.parts import parts


async def _live_show(
    client: httpx.AsyncClient, title: str, price: dict[str, Any], stock: int = 10
) -> tuple[str, str]:
    show = (await client.post("/api/shows", json={"title": title}, headers=admin_headers())).json()
    product = {
        "name": f"{title} tee",
        "variants": [
            {"sku": f"T-{show['id']}", "price": price, "stock": stock, "attributes": {"size": "M"}}
        ],
    }
    resp = await client.post(
        f"/api/shows/{show['id']}/products", json=product, headers=admin_headers()
    )
    assert resp.status_code == 201, resp.text
    await client.post(f"/api/shows/{show['id']}/start", headers=admin_headers())
    return show["id"], resp.json()["variants"][0]["id"]


async def _viewer(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    token = (await client.post("/api/viewers", json={"name": name})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def _buy(
    client: httpx.AsyncClient, who: dict[str, str], show: str, variant: str, key: str, n: int = 1
) -> str:
    resp = await client.post(
        f"/api/shows/{show}/buy",
        json={"variant_id": variant, "quantity": n, "payment_method": "pm_card_ok"},
        headers={**who, "Idempotency-Key": key},
    )
    assert resp.status_code == 201, resp.text
    order_id: str = resp.json()["order_id"]
    return order_id


async def test_a_viewer_sees_their_own_orders_in_every_show_newest_first(
    client: httpx.AsyncClient,
) -> None:
    eur_show, eur = await _live_show(client, "Morning", {"amount": 1250, "currency": "EUR"})
    jpy_show, jpy = await _live_show(client, "Tokyo", {"amount": 1200, "currency": "JPY"})
    vera, walt = await _viewer(client, "Vera"), await _viewer(client, "Walt")
    first = await _buy(client, vera, eur_show, eur, "v1", 2)
    theirs = await _buy(client, walt, eur_show, eur, "w1")
    second = await _buy(client, vera, jpy_show, jpy, "v2")

    resp = await client.get("/api/orders", headers=vera)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [o["order_id"] for o in body["orders"]] == [second, first]
    assert body["next_cursor"] is None
    newest, oldest = body["orders"]
    assert newest["show_title"] == "Tokyo" and newest["show_id"] == jpy_show
    assert newest["total"] == {"amount": 1200, "currency": "JPY", "exponent": 0}
    assert oldest["total"] == {"amount": 2500, "currency": "EUR", "exponent": 2}
    assert oldest["status"] == "paid" and oldest["units"] == 2
    assert oldest["lines"] == [
        {
            "variant_id": eur,
            "product_name": "Morning tee",
            "options": {"size": "M"},
            "quantity": 2,
            "unit_price": {"amount": 1250, "currency": "EUR", "exponent": 2},
        }
    ]
    walts = (await client.get("/api/orders", headers=walt)).json()["orders"]
    assert [o["order_id"] for o in walts] == [theirs]
    nobody = await _viewer(client, "Nobody")
    assert (await client.get("/api/orders", headers=nobody)).json() == {
        "orders": [],
        "next_cursor": None,
    }


async def test_pages_follow_the_cursor_to_the_end(client: httpx.AsyncClient) -> None:
    show, variant = await _live_show(client, "Drop", {"amount": 500, "currency": "EUR"})
    vera = await _viewer(client, "Vera")
    bought = [await _buy(client, vera, show, variant, f"k{i}") for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/orders", params=params, headers=vera)).json()
        seen += [o["order_id"] for o in page["orders"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(bought))  # newest first, each once


async def test_refusals_are_coded_and_staff_have_no_orders_of_their_own(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    show, _ = await _live_show(client, "Drop", {"amount": 500, "currency": "EUR"})
    vera = await _viewer(client, "Vera")
    for params, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": str(MY_ORDERS_LIMIT + 1)}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "x" * 300}, "cursor"),
        ({"buyer_id": "usr_other"}, "buyer_id"),
    ):
        resp = await client.get("/api/orders", params=params, headers=vera)
        assert resp.status_code == 422, params
        error = resp.json()["error"]
        assert error["code"] == "invalid_input" and field in error["fields"], params
    assert (
        await client.get("/api/orders", params={"limit": MY_ORDERS_LIMIT}, headers=vera)
    ).status_code == 200
    missing = await client.get("/api/orders")
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "auth_missing")
    forged = await client.get("/api/orders", headers={"Authorization": "Bearer x.y.z"})
    assert forged.status_code == 401
    admin = await client.get("/api/orders", headers=admin_headers())
    assert admin.status_code == 401  # the admin secret is no buyer
    host = parts(app).tokens.issue(Role.HOST, name="h", show_id=show)
    staff = await client.get("/api/orders", headers={"Authorization": f"Bearer {host}"})
    assert (staff.status_code, staff.json()["error"]["code"]) == (403, "forbidden_role")


async def test_prices_are_in_an_iso_4217_currency(client: httpx.AsyncClient) -> None:
    assert (exponent("JPY"), exponent("EUR"), exponent("KWD"), exponent("CLF")) == (0, 2, 3, 4)
    assert is_currency("USD") and not is_currency("XYZ") and not is_currency("eur")
    show = (await client.post("/api/shows", json={"title": "S"}, headers=admin_headers())).json()
    product = {
        "name": "Mug",
        "variants": [{"sku": "MUG", "price": {"amount": 100, "currency": "XYZ"}, "stock": 1}],
    }
    resp = await client.post(
        f"/api/shows/{show['id']}/products", json=product, headers=admin_headers()
    )
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_input"
    assert "currency" in str(resp.json()["error"]["fields"])
    shown = (await client.get(f"/api/shows/{show['id']}")).json()
    assert shown["products"] == []  # nothing was added
