"""Products' facts and shows' policies over HTTP (what automatic answers are made from), on
both databases: at their limits they are kept whole; past them, or from someone else's
token, a coded error that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import admin_headers


def _product(sku: str) -> dict[str, Any]:
    return {
        "name": "Tote",
        "variants": [{"sku": sku, "price": {"amount": 2500, "currency": "EUR"}, "stock": 5}],
        "facts": {"material": "Waxed canvas"},
    }


async def _show_and_product(
    client: httpx.AsyncClient, sku: str = "TOTE-1"
) -> tuple[str, dict[str, Any]]:
    show = (await client.post("/api/shows", json={"title": "Bags"}, headers=admin_headers())).json()
    body = _product(sku)
    resp = await client.post(
        f"/api/shows/{show['id']}/products", json=body, headers=admin_headers()
    )
    assert resp.status_code == 201, resp.text
    return show["id"], resp.json()


async def _host(client: httpx.AsyncClient, show_id: str) -> dict[str, str]:
    issued = await client.post(
        "/api/tokens",
        json={"role": "host", "name": "Hana", "show_id": show_id},
        headers=admin_headers(),
    )
    return {"Authorization": f"Bearer {issued.json()['token']}"}


async def test_facts_and_policies_are_set_and_read_back_at_their_limits(
    client: httpx.AsyncClient,
) -> None:
    show_id, product = await _show_and_product(client)
    assert product["facts"] == {"material": "Waxed canvas"}
    host = await _host(client, show_id)
    facts = {f"{n:02}" + "k" * 58: "v" * 500 for n in range(30)}
    resp = await client.put(
        f"/api/products/{product['id']}/facts", json={"facts": facts}, headers=host
    )
    assert resp.status_code == 200, resp.text
    policies = {f"{n:02}" + "p" * 58: "w" * 1000 for n in range(20)}
    resp = await client.put(
        f"/api/shows/{show_id}/policies", json={"policies": policies}, headers=host
    )
    assert resp.status_code == 200, resp.text
    shown = (await client.get(f"/api/shows/{show_id}")).json()
    assert shown["policies"] == policies
    assert shown["products"][0]["facts"] == facts


async def test_bad_facts_or_policies_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    show_id, product = await _show_and_product(client)
    host = await _host(client, show_id)
    url = f"/api/products/{product['id']}/facts"
    for bad in (
        {"facts": {"k" * 61: "v"}},
        {"facts": {"material": "v" * 501}},
        {"facts": {f"k{n}": "v" for n in range(31)}},
        {"facts": {"material": 3}},
        {"facts": {"material": ""}},
        {"facts": ["material"]},
        {},
    ):
        resp = await client.put(url, json=bad, headers=host)
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["error"]["code"] == "invalid_input"
    for bad in (
        {"policies": {"returns": "r" * 1001}},
        {"policies": {f"p{n}": "x" for n in range(21)}},
    ):
        resp = await client.put(f"/api/shows/{show_id}/policies", json=bad, headers=host)
        assert resp.status_code == 422, (bad, resp.text)
    other, _ = await _show_and_product(client, sku="TOTE-2")
    foreign = await _host(client, other)
    resp = await client.put(url, json={"facts": {"material": "Paper"}}, headers=foreign)
    assert resp.status_code == 403
    resp = await client.put(
        f"/api/shows/{show_id}/policies", json={"policies": {}}, headers=foreign
    )
    assert resp.status_code == 403
    resp = await client.put(url, json={"facts": {"material": "Paper"}})
    assert resp.status_code == 401
    shown = (await client.get(f"/api/shows/{show_id}")).json()
    assert shown["products"][0]["facts"] == {"material": "Waxed canvas"}
    assert shown["policies"] == {}
