"""Staff's order routes over HTTP, on both databases and real Redis: who may act, each
move's answer, the coded refusals, and a cancelled unit bought again by a viewer."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from core.roles import Role
from tests.conftest import admin_headers
from web.parts import parts


async def _live_show(client: httpx.AsyncClient) -> tuple[str, str]:
    show = (await client.post("/api/shows", json={"title": "Drop"}, headers=admin_headers())).json()
    product = {
        "name": "Sneaker",
        "variants": [{"sku": "S-42", "price": {"amount": 12900, "currency": "EUR"}, "stock": 1}],
    }
    resp = await client.post(
        f"/api/shows/{show['id']}/products", json=product, headers=admin_headers()
    )
    assert resp.status_code == 201, resp.text
    await client.post(f"/api/shows/{show['id']}/start", headers=admin_headers())
    return show["id"], resp.json()["variants"][0]["id"]


async def _viewer(client: httpx.AsyncClient, name: str = "Vera") -> dict[str, str]:
    token = (await client.post("/api/viewers", json={"name": name})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def _buy(client: httpx.AsyncClient, show: str, variant: str, key: str = "b1") -> str:
    resp = await client.post(
        f"/api/shows/{show}/buy",
        json={"variant_id": variant, "quantity": 1, "payment_method": "pm_card_ok"},
        headers={**await _viewer(client), "Idempotency-Key": key},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["status"] == "paid"
    order_id: str = resp.json()["order_id"]
    return order_id


def _token(app: Starlette, role: Role, show: str | None) -> dict[str, str]:
    token = parts(app).tokens.issue(role, name="x", show_id=show, user_id="usr_staff")
    return {"Authorization": f"Bearer {token}"}


async def test_the_shows_host_cancels_and_a_viewer_buys_the_unit_again(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    show, variant = await _live_show(client)
    order_id = await _buy(client, show, variant)
    host = _token(app, Role.HOST, show)
    sold_out = await client.post(
        f"/api/shows/{show}/buy",
        json={"variant_id": variant, "quantity": 1, "payment_method": "pm_card_ok"},
        headers={**await _viewer(client, "Walt"), "Idempotency-Key": "b2"},
    )
    assert sold_out.json()["error"]["code"] == "sold_out"
    resp = await client.post(
        f"/api/orders/{order_id}/cancel", json={"reason": "no stock"}, headers=host
    )
    assert resp.status_code == 200, resp.text
    order = resp.json()
    assert (order["status"], order["refunded"]) == (
        "cancelled",
        {"amount": 12900, "currency": "EUR"},
    )
    assert [
        (s["action"], s["from"], s["to"], s["actor"], s["reason"]) for s in order["history"]
    ] == [("cancel", "paid", "cancelled", "usr_staff", "no stock")]
    again = await client.post(f"/api/orders/{order_id}/cancel", headers=host)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    payments = parts(app).checkout.payments
    assert [r.amount_minor for r in await payments.refunds()] == [12900]  # type: ignore[attr-defined]
    bought = await client.post(
        f"/api/shows/{show}/buy",
        json={"variant_id": variant, "quantity": 1, "payment_method": "pm_card_ok"},
        headers={**await _viewer(client, "Walt"), "Idempotency-Key": "b3"},
    )
    assert bought.status_code == 201, bought.text


async def test_moves_refusals_and_the_list(client: httpx.AsyncClient, app: Starlette) -> None:
    show, variant = await _live_show(client)
    order_id = await _buy(client, show, variant)
    url = f"/api/orders/{order_id}"
    got = await client.get(url, headers=admin_headers())
    assert got.status_code == 200 and got.json()["history"] == [] and got.json()["refunds"] == []
    too_much = await client.post(
        f"{url}/refund", json={"amount_minor": 12901}, headers=admin_headers()
    )
    assert too_much.status_code == 422
    assert too_much.json()["error"] == {
        "code": "invalid_refund_amount",
        "message": "a refund of this order is 1 to 12900 minor units",
        "fields": {"amount_minor": "1-12900"},
        "extra": {"refundable_minor": 12900},
    }
    for body in ({"amount_minor": 0}, {"amount_minor": "5"}, {"reason": "r" * 201}, {"x": 1}):
        resp = await client.post(f"{url}/refund", json=body, headers=admin_headers())
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_input"), body
    keyed = {**admin_headers(), "Idempotency-Key": "r-1"}
    for _ in range(2):
        part = await client.post(f"{url}/refund", json={"amount_minor": 900}, headers=keyed)
        assert part.status_code == 200 and part.json()["status"] == "paid"
        assert part.json()["refunded"]["amount"] == 900
    fulfilled = await client.post(f"{url}/fulfil", headers=admin_headers())
    assert fulfilled.status_code == 200 and fulfilled.json()["status"] == "fulfilled"
    illegal = await client.post(f"{url}/cancel", headers=admin_headers())
    assert illegal.status_code == 409
    assert illegal.json()["error"]["code"] == "illegal_transition"
    assert "fulfilled" in illegal.json()["error"]["message"]
    listed = await client.get(f"/api/shows/{show}/orders?status=fulfilled", headers=admin_headers())
    assert [o["order_id"] for o in listed.json()["orders"]] == [order_id]
    none = await client.get(f"/api/shows/{show}/orders?status=paid", headers=admin_headers())
    assert none.json() == {"orders": []}
    bad = await client.get(f"/api/shows/{show}/orders?status=confirmed", headers=admin_headers())
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_input")
    rest = await client.post(f"{url}/refund", headers=admin_headers())
    assert rest.json()["status"] == "refunded" and rest.json()["refunded"]["amount"] == 12900
    payments = parts(app).checkout.payments
    assert [r.amount_minor for r in await payments.refunds()] == [900, 12000]  # type: ignore[attr-defined]
    missing = await client.post("/api/orders/ord_nope/fulfil", headers=admin_headers())
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "order_not_found")


async def test_who_may_act_on_an_order(client: httpx.AsyncClient, app: Starlette) -> None:
    show, variant = await _live_show(client)
    other = (await client.post("/api/shows", json={"title": "B"}, headers=admin_headers())).json()
    order_id = await _buy(client, show, variant)
    refused = {
        "viewer": (await _viewer(client), 403, "forbidden_role"),
        "moderator": (_token(app, Role.MODERATOR, show), 403, "forbidden_role"),
        "other_host": (_token(app, Role.HOST, other["id"]), 403, "forbidden_show"),
        "none": ({}, 401, "auth_missing"),
    }
    for path in ("cancel", "refund", "fulfil"):
        for who, (headers, status, code) in refused.items():
            resp = await client.post(f"/api/orders/{order_id}/{path}", headers=headers)
            assert (who, resp.status_code, resp.json()["error"]["code"]) == (who, status, code)
    for who, (headers, status, _code) in refused.items():
        resp = await client.get(f"/api/orders/{order_id}", headers=headers)
        assert (who, resp.status_code) == (who, status)
        resp = await client.get(f"/api/shows/{show}/orders", headers=headers)
        assert (who, resp.status_code) == (who, status)
    viewer_none = await client.get("/api/orders/ord_nope", headers=await _viewer(client))
    assert viewer_none.status_code == 404  # (nothing to hide: ids are unguessable)
    unsigned = await client.get("/api/orders/ord_nope")
    assert unsigned.status_code == 401  # no lookup before a valid token
    got = await client.get(f"/api/orders/{order_id}", headers=_token(app, Role.HOST, show))
    assert got.status_code == 200 and got.json()["status"] == "paid"
    assert await parts(app).checkout.payments.refunds() == []  # type: ignore[attr-defined]
