"""Every API body at the most it accepts, on both databases: what lands in SQL fits its
column (PostgreSQL refuses what SQLite keeps), and one past the limit is a coded 422."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from checkout.validation import MAX_PRICE_MINOR, MAX_QUANTITY, MAX_UNITS
from tests.conftest import admin_headers

SKU = "S" * 64


def _variant(sku: str, **extra: Any) -> dict[str, Any]:
    return {
        "sku": sku,
        "price": {"amount": MAX_PRICE_MINOR, "currency": "EUR"},
        "stock": MAX_UNITS,
        "attributes": {f"k{n}": "v" * 10 for n in range(20)},  # (the body is at most 64 KiB)
        **extra,
    }


def _product(name: str = "N" * 200) -> dict[str, Any]:
    return {
        "name": name,
        "description": "d" * 4000,
        "image_url": "https://img.example/" + "x" * 980,
        "variants": [_variant(f"{SKU[:60]}{n:04}") for n in range(50)],
    }


async def _show(client: httpx.AsyncClient, title: str = "T" * 200) -> str:
    resp = await client.post("/api/shows", json={"title": title}, headers=admin_headers())
    assert resp.status_code == 201, resp.text
    show_id: str = resp.json()["id"]
    return show_id


async def test_the_catalog_at_its_limits_fits(client: httpx.AsyncClient) -> None:
    show = await _show(client)
    resp = await client.post(
        f"/api/shows/{show}/products", json=_product(), headers=admin_headers()
    )
    assert resp.status_code == 201, resp.text
    product = resp.json()
    resp = await client.post(
        f"/api/products/{product['id']}/variants", json=_variant(SKU), headers=admin_headers()
    )
    assert resp.status_code == 201, resp.text
    stock = await client.put(
        f"/api/variants/{resp.json()['id']}/stock",
        json={"stock": MAX_UNITS},
        headers=admin_headers(),
    )
    assert stock.status_code == 200, stock.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "viewer", "name": "n" * 81}, "name"),
        ({"role": "viewer", "name": "n" * 200}, "name"),
        ({"role": "viewer", "name": "n", "user_id": "u" * 41}, "user_id"),
        ({"role": "host", "name": "n", "show_id": "s" * 41}, "show_id"),
    ],
)
async def test_a_token_past_its_limits_is_refused(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/tokens", json=body, headers=admin_headers())
    assert resp.status_code == 422, resp.text
    assert list(resp.json()["error"]["fields"]) == [field]


async def test_a_token_name_at_its_limit_fits(client: httpx.AsyncClient) -> None:
    show = await _show(client)
    for role in ("host", "moderator"):
        body = {"role": role, "name": "n" * 80, "show_id": show}
        resp = await client.post("/api/tokens", json=body, headers=admin_headers())
        assert resp.status_code == 201, resp.text


async def test_a_cart_at_its_limits_is_one_order(client: httpx.AsyncClient) -> None:
    """Three lines of ten units at the highest price: a total past 2**31 minor units."""
    show = await _show(client)
    product = {**_product("Gold"), "variants": [_variant(f"G{n}") for n in range(3)]}
    resp = await client.post(f"/api/shows/{show}/products", json=product, headers=admin_headers())
    assert resp.status_code == 201, resp.text
    variants = [v["id"] for v in resp.json()["variants"]]
    assert (await client.post(f"/api/shows/{show}/start", headers=admin_headers())).is_success
    token = (await client.post("/api/viewers", json={"name": "V" * 40})).json()["token"]
    viewer = {"Authorization": f"Bearer {token}"}
    for variant in variants:
        line = {"variant_id": variant, "quantity": MAX_QUANTITY}
        resp = await client.post(f"/api/shows/{show}/cart", json=line, headers=viewer)
        assert resp.status_code == 200, resp.text
    resp = await client.post(
        f"/api/shows/{show}/cart/checkout",
        json={"payment_method": "pm_card_ok"},
        headers={**viewer, "Idempotency-Key": "k" * 100},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["total"]["amount"] == 3 * MAX_QUANTITY * MAX_PRICE_MINOR
    order_id = resp.json()["order_id"]
    # A refund past 2**31 minor units, with a reason and a request key at their most
    # (order_refunds, order_history and orders.refunded_minor keep each).
    url = f"/api/orders/{order_id}/refund"
    keyed = {**admin_headers(), "Idempotency-Key": "r" * 100}
    resp = await client.post(
        url, json={"amount_minor": 2**31 + 7, "reason": "R" * 200}, headers=keyed
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["refunded"]["amount"] == 2**31 + 7
    resp = await client.post(url, json={"reason": "R" * 201}, headers=admin_headers())
    assert resp.status_code == 422 and list(resp.json()["error"]["fields"]) == ["reason"]
    resp = await client.post(
        f"/api/orders/{order_id}/cancel", json={"reason": "C" * 200}, headers=admin_headers()
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["refunded"]["amount"] == 3 * MAX_QUANTITY * MAX_PRICE_MINOR
    assert resp.json()["history"][-1]["reason"] == "C" * 200


async def test_a_nul_character_is_refused_with_a_coded_error(client: httpx.AsyncClient) -> None:
    # valid JSON, but PostgreSQL's text cannot hold U+0000: refused before it reaches SQL
    body = b'{"title": "live \\u0000 show"}'
    resp = await client.post(
        "/api/shows", content=body, headers={**admin_headers(), "Content-Type": "application/json"}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid_input"
    listed = await client.get("/api/shows")
    assert all("\x00" not in show["title"] for show in listed.json().get("shows", []))
    ok = await client.post(
        "/api/shows", json={"title": "a \\u0000 as text"}, headers=admin_headers()
    )
    assert ok.status_code == 201  # a backslash and "u0000" are plain text
