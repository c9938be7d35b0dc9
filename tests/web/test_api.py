"""The admin and host API on both databases: what it does, and what it refuses."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from core.roles import Role
from tests.conftest import admin_headers
from web.parts import parts

PRODUCT = {
    "name": "Sweater",
    "image_url": "https://img.example/s.png",
    "variants": [
        {
            "sku": "SW-S",
            "price": {"amount": 7900, "currency": "EUR"},
            "stock": 5,
            "attributes": {"size": "S"},
        },
        {"sku": "SW-M", "price": {"amount": 7900, "currency": "EUR"}, "stock": 0},
    ],
}


async def _show(client: httpx.AsyncClient, title: str = "Autumn") -> dict[str, Any]:
    resp = await client.post("/api/shows", json={"title": title}, headers=admin_headers())
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _host(app: Starlette, show_id: str) -> dict[str, str]:
    token = parts(app).tokens.issue(Role.HOST, name="Hana", show_id=show_id)
    return {"Authorization": f"Bearer {token}"}


async def test_show_lifecycle_and_catalog(client: httpx.AsyncClient, app: Starlette) -> None:
    show = await _show(client)
    assert show["status"] == "scheduled"
    host = _host(app, show["id"])
    resp = await client.post(f"/api/shows/{show['id']}/products", json=PRODUCT, headers=host)
    assert resp.status_code == 201, resp.text
    product = resp.json()
    assert [v["sku"] for v in product["variants"]] == ["SW-S", "SW-M"]
    assert product["variants"][0]["price"] == {"amount": 7900, "currency": "EUR"}
    assert product["variants"][0]["attributes"] == {"size": "S"}

    variant_id = product["variants"][1]["id"]
    resp = await client.put(f"/api/variants/{variant_id}/stock", json={"stock": 12}, headers=host)
    assert resp.status_code == 200, resp.text
    assert resp.json()["stock"] == 12

    resp = await client.post(
        f"/api/products/{product['id']}/variants",
        json={"sku": "SW-L", "price": {"amount": 8100, "currency": "EUR"}, "stock": 3},
        headers=host,
    )
    assert resp.status_code == 201, resp.text

    assert (await client.post(f"/api/shows/{show['id']}/start", headers=host)).json()[
        "status"
    ] == "live"
    resp = await client.get(f"/api/shows/{show['id']}")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "live" and body["started_at"] is not None
    assert [v["stock"] for v in body["products"][0]["variants"]] == [5, 12, 3]

    resp = await client.post(f"/api/shows/{show['id']}/end", headers=admin_headers())
    assert resp.json()["status"] == "ended"
    resp = await client.post(f"/api/shows/{show['id']}/start", headers=admin_headers())
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "illegal_transition"


async def test_list_shows_by_status(client: httpx.AsyncClient) -> None:
    first = await _show(client, "one")
    await _show(client, "two")
    await client.post(f"/api/shows/{first['id']}/start", headers=admin_headers())
    resp = await client.get("/api/shows?status=live", headers=admin_headers())
    assert [s["title"] for s in resp.json()["shows"]] == ["one"]
    resp = await client.get("/api/shows", headers=admin_headers())
    assert sorted(s["title"] for s in resp.json()["shows"]) == ["one", "two"]
    resp = await client.get("/api/shows?status=paused", headers=admin_headers())
    assert resp.status_code == 422
    assert resp.json()["error"]["fields"] == {"status": "unknown"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "variants": []}, "variants"),
        ({"name": "", "variants": PRODUCT["variants"]}, "name"),
        (
            {
                "name": "x",
                "variants": [{"sku": "A", "price": {"amount": -1, "currency": "EUR"}, "stock": 1}],
            },
            "variants.0.price.amount",
        ),
        (
            {
                "name": "x",
                "variants": [{"sku": "A", "price": {"amount": 1, "currency": "EUR"}, "stock": -3}],
            },
            "variants.0.stock",
        ),
        (
            {
                "name": "x",
                "variants": [
                    {"sku": "A", "price": {"amount": "10", "currency": "EUR"}, "stock": 1}
                ],
            },
            "variants.0.price.amount",
        ),
        (
            {
                "name": "x",
                "variants": [{"sku": "A", "price": {"amount": 1, "currency": "euro"}, "stock": 1}],
            },
            "variants.0.price.currency",
        ),
        ({"name": "x", "variants": PRODUCT["variants"], "colour": "red"}, "colour"),
    ],
)
async def test_bad_product_fields_change_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    show = await _show(client)
    resp = await client.post(
        f"/api/shows/{show['id']}/products", json=body, headers=admin_headers()
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["fields"]
    assert (await client.get(f"/api/shows/{show['id']}")).json()["products"] == []


@pytest.mark.parametrize(
    "image_url",
    [
        "https://img.example/s.png",
        "https://img.example:8443/a/b.png?w=2",
        "/static/img/sweater.svg",
        "https://img.example/" + "x" * 980,
    ],
)
async def test_image_url_accepts_https_and_own_paths(
    client: httpx.AsyncClient, image_url: str
) -> None:
    show = await _show(client)
    body = {**PRODUCT, "image_url": image_url}
    resp = await client.post(
        f"/api/shows/{show['id']}/products", json=body, headers=admin_headers()
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["image_url"] == image_url


@pytest.mark.parametrize(
    "image_url",
    [
        "//evil.example/x.png",  # protocol-relative: a third party's image
        "/\\evil.example/x.png",  # browsers read "/\" as "//"
        "http://img.example/s.png",  # mixed content on an https page
        "https://",
        "https:///x.png",
        "https://user@evil.example/x.png",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "static/img/x.png",
        "/",
        "/static/a b.png",
        "https://img.example/" + "x" * 981,
    ],
)
async def test_image_url_refuses_other_origins_and_schemes(
    client: httpx.AsyncClient, image_url: str
) -> None:
    show = await _show(client)
    body = {**PRODUCT, "image_url": image_url}
    resp = await client.post(
        f"/api/shows/{show['id']}/products", json=body, headers=admin_headers()
    )
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert (error["code"], list(error["fields"])) == ("invalid_input", ["image_url"])
    assert (await client.get(f"/api/shows/{show['id']}")).json()["products"] == []


async def test_bad_bodies(client: httpx.AsyncClient) -> None:
    show = await _show(client)
    url = f"/api/shows/{show['id']}/products"
    headers = {**admin_headers(), "content-type": "application/json"}
    resp = await client.post(url, content=b"{not json", headers=headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "malformed_json")
    resp = await client.post(
        url,
        content=b"name=x",
        headers={**admin_headers(), "content-type": "application/x-www-form-urlencoded"},
    )
    assert (resp.status_code, resp.json()["error"]["code"]) == (415, "unsupported_media_type")
    huge = b'{"name": "' + b"x" * (70 * 1024) + b'"}'
    resp = await client.post(url, content=huge, headers=headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (413, "body_too_large")
    resp = await client.post(url, content=b"[1, 2]", headers=headers)
    assert resp.status_code == 422
    nan = (
        b'{"name": "x", "variants": [{"sku": "N", "price": {"amount": 1, "currency": "EUR"}, '
        b'"stock": 1, "attributes": {"w": NaN}}]}'
    )
    resp = await client.post(url, content=nan, headers=headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "malformed_json")
    assert (await client.get(f"/api/shows/{show['id']}")).json()["products"] == []


async def test_duplicate_sku_is_refused_whole(client: httpx.AsyncClient) -> None:
    show = await _show(client)
    url = f"/api/shows/{show['id']}/products"
    assert (await client.post(url, json=PRODUCT, headers=admin_headers())).status_code == 201
    resp = await client.post(url, json={**PRODUCT, "name": "Again"}, headers=admin_headers())
    assert (resp.status_code, resp.json()["error"]["code"]) == (409, "duplicate_sku")
    products = (await client.get(f"/api/shows/{show['id']}")).json()["products"]
    assert [p["name"] for p in products] == ["Sweater"]


async def test_unknown_ids(client: httpx.AsyncClient) -> None:
    h = admin_headers()
    resp = await client.get("/api/shows/shw_nope")
    assert (resp.status_code, resp.json()["error"]["code"]) == (404, "show_not_found")
    resp = await client.post("/api/shows/shw_nope/products", json=PRODUCT, headers=h)
    assert resp.status_code == 404
    resp = await client.put("/api/variants/var_nope/stock", json={"stock": 1}, headers=h)
    assert (resp.status_code, resp.json()["error"]["code"]) == (404, "variant_not_found")
    resp = await client.post(
        "/api/products/prd_nope/variants", json=PRODUCT["variants"][0], headers=h
    )
    assert resp.status_code == 404
    resp = await client.put("/api/variants/var_nope/stock", json={"stock": 1})
    assert resp.status_code == 401  # no token: 401 before anything is looked up
    resp = await client.post("/api/products/prd_nope/variants", json=PRODUCT["variants"][0])
    assert resp.status_code == 401
    resp = await client.get("/no/such/route")
    assert (resp.status_code, resp.json()["error"]["code"]) == (404, "not_found")


async def test_tokens_are_checked(client: httpx.AsyncClient, app: Starlette) -> None:
    show = await _show(client)
    other = await _show(client, "other")
    url = f"/api/shows/{show['id']}/start"
    tokens = parts(app).tokens

    async def status(headers: dict[str, str]) -> tuple[int, str]:
        resp = await client.post(url, headers=headers)
        return resp.status_code, resp.json()["error"]["code"] if resp.status_code >= 400 else "ok"

    assert await status({}) == (401, "auth_missing")
    assert await status({"Authorization": "Bearer garbage"}) == (401, "auth_invalid")
    forged = jwt.encode(
        {
            "iss": "liveshop",
            "sub": "h",
            "role": "host",
            "show": show["id"],
            "exp": int(time.time()) + 60,
        },
        "another-key-entirely-another-key-entirely",
        algorithm="HS256",
    )
    assert await status({"Authorization": f"Bearer {forged}"}) == (401, "auth_invalid")
    expired = jwt.encode(
        {
            "iss": "liveshop",
            "sub": "h",
            "role": "host",
            "show": show["id"],
            "exp": int(time.time()) - 5,
        },
        "test-secret-key-0123456789-abcdefghij",
        algorithm="HS256",
    )
    assert await status({"Authorization": f"Bearer {expired}"}) == (401, "auth_expired")
    assert await status(_host(app, other["id"])) == (403, "forbidden_show")
    moderator = tokens.issue(Role.MODERATOR, name="m", show_id=show["id"])
    assert await status({"Authorization": f"Bearer {moderator}"}) == (403, "forbidden_role")
    viewer = tokens.issue(Role.VIEWER, name="v")
    assert await status({"Authorization": f"Bearer {viewer}"}) == (403, "forbidden_role")
    assert (await client.get(f"/api/shows/{show['id']}")).json()["status"] == "scheduled"
    assert await status(_host(app, show["id"])) == (200, "ok")


async def test_admin_api_requires_the_secret(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/shows", json={"title": "x"})
    assert resp.status_code == 401
    resp = await client.post(
        "/api/shows", json={"title": "x"}, headers={"Authorization": "Bearer wrong-secret-value"}
    )
    assert resp.status_code == 401
    resp = await client.get("/api/shows", headers=admin_headers())
    assert resp.json()["shows"] == []


async def test_token_api(client: httpx.AsyncClient, app: Starlette) -> None:
    show = await _show(client)
    resp = await client.post(
        "/api/tokens",
        json={"role": "host", "name": "Hana", "show_id": show["id"], "ttl_s": 600},
        headers=admin_headers(),
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    principal = parts(app).tokens.verify(body["token"])
    assert (principal.role, principal.show_id, principal.name) == (Role.HOST, show["id"], "Hana")
    assert body["expires_at"] - time.time() == pytest.approx(600, abs=5)
    resp = await client.post(
        "/api/tokens", json={"role": "moderator", "name": "M"}, headers=admin_headers()
    )
    assert resp.status_code == 422 and "show_id" in resp.json()["error"]["fields"]
    resp = await client.post(
        "/api/tokens",
        json={"role": "host", "name": "M", "show_id": "shw_nope"},
        headers=admin_headers(),
    )
    assert resp.status_code == 404
    resp = await client.post(
        "/api/tokens", json={"role": "king", "name": "M"}, headers=admin_headers()
    )
    assert resp.status_code == 422 and "role" in resp.json()["error"]["fields"]
    resp = await client.post("/api/tokens", json={"role": "viewer", "name": "V"})
    assert resp.status_code == 401


async def test_token_api_keeps_one_user_per_person(client: httpx.AsyncClient) -> None:
    show = await _show(client)
    first = (
        await client.post(
            "/api/tokens",
            json={"role": "host", "name": "Hana", "show_id": show["id"]},
            headers=admin_headers(),
        )
    ).json()
    again = await client.post(
        "/api/tokens",
        json={"role": "host", "name": "Hana K", "show_id": show["id"], "user_id": first["user_id"]},
        headers=admin_headers(),
    )
    assert again.status_code == 201
    assert (again.json()["user_id"], again.json()["name"]) == (first["user_id"], "Hana K")
    wrong = await client.post(
        "/api/tokens",
        json={"role": "moderator", "name": "x", "show_id": show["id"], "user_id": first["user_id"]},
        headers=admin_headers(),
    )
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (409, "role_mismatch")
    unknown = await client.post(
        "/api/tokens",
        json={"role": "host", "name": "x", "show_id": show["id"], "user_id": "usr_x"},
        headers=admin_headers(),
    )
    assert unknown.status_code == 404


async def test_anonymous_viewer_identity(client: httpx.AsyncClient, app: Starlette) -> None:
    resp = await client.post("/api/viewers", json={"name": "  Vera "})
    assert resp.status_code == 201
    principal = parts(app).tokens.verify(resp.json()["token"])
    assert (principal.role, principal.name, principal.show_id) == (Role.VIEWER, "Vera", None)
    other = parts(app).tokens.verify(
        (await client.post("/api/viewers", json={"name": "Vera"})).json()["token"]
    )
    assert other.user_id != principal.user_id
    resp = await client.post("/api/viewers", json={"name": "x" * 41})
    assert resp.status_code == 422


async def test_a_token_renews_for_the_same_person_role_and_show(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    tokens = parts(app).tokens
    show = await _show(client)
    host = tokens.issue(Role.HOST, name="Hana", show_id=show["id"], ttl_s=60)
    before = tokens.verify(host)
    resp = await client.post("/api/tokens/renew", headers={"Authorization": f"Bearer {host}"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    after = tokens.verify(body["token"])
    assert (after.role, after.user_id, after.name, after.show_id) == (
        Role.HOST,
        before.user_id,
        "Hana",
        show["id"],
    )
    assert after.expires_at - after.issued_at == 60  # the same lifetime as the first
    assert after.auth_time == before.auth_time  # the line keeps its first issue time
    assert body["expires_at"] == after.expires_at and body["user_id"] == before.user_id
    viewer = (await client.post("/api/viewers", json={"name": "Vera"})).json()
    resp = await client.post(
        "/api/tokens/renew", headers={"Authorization": f"Bearer {viewer['token']}"}
    )
    assert resp.status_code == 200 and resp.json()["user_id"] == viewer["user_id"]
    renewed = tokens.verify(resp.json()["token"])
    assert renewed.expires_at - renewed.issued_at == parts(app).settings.token_ttl_s


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda tokens: None, 401, "auth_missing"),
        (lambda tokens: "not-a-token", 401, "auth_invalid"),
        (lambda tokens: tokens.issue(Role.VIEWER, name="V", ttl_s=-5), 401, "auth_expired"),
        (
            lambda tokens: tokens.issue(
                Role.VIEWER, name="V", auth_time=int(time.time()) - 8 * 24 * 3600
            ),
            403,
            "renewal_limit",
        ),
    ],
)
async def test_renewal_refuses_what_it_cannot_vouch_for(
    client: httpx.AsyncClient, app: Starlette, make: Any, status: int, code: str
) -> None:
    token = make(parts(app).tokens)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await client.post("/api/tokens/renew", headers=headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (status, code)
