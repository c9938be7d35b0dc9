"""Every HTTP route against every kind of credential, on both databases and real Redis.

No token, a forged one, an ``alg: none`` one and an expired one get 401; a valid token of
the wrong role, or of another show, gets 403; the right one gets its 2xx. A refused request
changes nothing in SQL or Redis.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import redis.asyncio as aioredis
from sqlalchemy import select
from starlette.applications import Starlette

from core.db import Base
from core.roles import Role
from tests.conftest import ADMIN_SECRET, admin_headers
from tests.state_digest import VOLATILE_TABLES
from web.parts import parts

ADMIN, HOST, VIEWER, ANYONE, TOKEN = "admin", "host", "viewer", "anyone", "any token"


@dataclass
class World:
    """Two shows (one live, one scheduled), a variant with units and a sold-out one."""

    live: str
    scheduled: str
    product: str
    variant: str
    sold_out: str
    viewer: dict[str, str] = field(default_factory=dict)
    order: str = ""  # made by the _order preparation
    stream_key: str = ""  # made by the _stream_key preparation


@dataclass(frozen=True)
class Route:
    method: str
    path: Callable[[World], str]
    who: str  # ADMIN, HOST (the show's host, or admin), VIEWER, ANYONE or TOKEN
    body: Callable[[World], dict[str, Any]] | None = None
    on_scheduled: bool = False  # the route acts on the scheduled show
    key: bool = False  # takes an Idempotency-Key
    prepare: Callable[[httpx.AsyncClient, World], Awaitable[None]] | None = None


async def _cart_line(client: httpx.AsyncClient, world: World) -> None:
    resp = await client.post(
        f"/api/shows/{world.live}/cart",
        json={"variant_id": world.variant, "quantity": 1},
        headers=world.viewer,
    )
    assert resp.status_code == 200, resp.text


async def _deal(client: httpx.AsyncClient, world: World) -> None:
    resp = await client.post(
        f"/api/shows/{world.live}/deals/{world.variant}",
        json=_deal_body(world),
        headers=admin_headers(),
    )
    assert resp.status_code == 201, resp.text


async def _order(client: httpx.AsyncClient, world: World) -> None:
    resp = await client.post(
        f"/api/shows/{world.live}/buy",
        json={"variant_id": world.variant, "quantity": 1, "payment_method": "pm_card_ok"},
        headers={**world.viewer, "Idempotency-Key": "order-1"},
    )
    assert resp.status_code == 201, resp.text
    world.order = resp.json()["order_id"]


async def _stream_key(client: httpx.AsyncClient, world: World) -> None:
    resp = await client.post(
        f"/api/shows/{world.live}/stream-keys", json={"label": "OBS"}, headers=admin_headers()
    )
    assert resp.status_code == 201, resp.text
    world.stream_key = resp.json()["id"]


def _deal_body(world: World) -> dict[str, Any]:
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    return {"price_minor": 500, "units": 2, "ends_at": ends, "per_buyer_limit": 1}


def _product(sku: str) -> dict[str, Any]:
    variant = {"sku": sku, "price": {"amount": 100, "currency": "EUR"}, "stock": 5}
    return {"name": "Mug", "variants": [variant]}


ROUTES: dict[str, Route] = {
    "create_show": Route("POST", lambda w: "/api/shows", ADMIN, lambda w: {"title": "t"}),
    "list_shows": Route("GET", lambda w: "/api/shows", ANYONE),  # (the public list)
    "get_show": Route("GET", lambda w: f"/api/shows/{w.live}", ANYONE),
    "add_product": Route(
        "POST", lambda w: f"/api/shows/{w.live}/products", HOST, lambda w: _product("NEW-1")
    ),
    "add_variant": Route(
        "POST",
        lambda w: f"/api/products/{w.product}/variants",
        HOST,
        lambda w: _product("NEW-2")["variants"][0],
    ),
    "set_stock": Route(
        "PUT", lambda w: f"/api/variants/{w.variant}/stock", HOST, lambda w: {"stock": 9}
    ),
    "update_show": Route(
        "PATCH", lambda w: f"/api/shows/{w.live}", HOST, lambda w: {"title": "Renamed"}
    ),
    "start_show": Route(
        "POST", lambda w: f"/api/shows/{w.scheduled}/start", HOST, on_scheduled=True
    ),
    "end_show": Route("POST", lambda w: f"/api/shows/{w.live}/end", HOST),
    "issue_token": Route(
        "POST", lambda w: "/api/tokens", ADMIN, lambda w: {"role": "viewer", "name": "V"}
    ),
    "renew_token": Route("POST", lambda w: "/api/tokens/renew", TOKEN),
    "viewer_identity": Route("POST", lambda w: "/api/viewers", ANYONE, lambda w: {"name": "V"}),
    "buy": Route(
        "POST",
        lambda w: f"/api/shows/{w.live}/buy",
        VIEWER,
        lambda w: {"variant_id": w.variant, "quantity": 1, "payment_method": "pm_card_ok"},
        key=True,
    ),
    "view_cart": Route("GET", lambda w: f"/api/shows/{w.live}/cart", VIEWER),
    "add_to_cart": Route(
        "POST",
        lambda w: f"/api/shows/{w.live}/cart",
        VIEWER,
        lambda w: {"variant_id": w.variant, "quantity": 1},
    ),
    "change_cart_line": Route(
        "PATCH",
        lambda w: f"/api/shows/{w.live}/cart/{w.variant}",
        VIEWER,
        lambda w: {"quantity": 2},
        prepare=_cart_line,
    ),
    "remove_cart_line": Route(
        "DELETE", lambda w: f"/api/shows/{w.live}/cart/{w.variant}", VIEWER, prepare=_cart_line
    ),
    "checkout_cart": Route(
        "POST",
        lambda w: f"/api/shows/{w.live}/cart/checkout",
        VIEWER,
        lambda w: {"payment_method": "pm_card_ok"},
        key=True,
        prepare=_cart_line,
    ),
    "notify_me": Route(
        "POST",
        lambda w: f"/api/shows/{w.live}/notify",
        VIEWER,
        lambda w: {"variant_id": w.sold_out},
    ),
    "list_deals": Route("GET", lambda w: f"/api/shows/{w.live}/deals", ANYONE),
    "start_deal": Route(
        "POST", lambda w: f"/api/shows/{w.live}/deals/{w.variant}", HOST, _deal_body
    ),
    "stop_deal": Route(
        "DELETE", lambda w: f"/api/shows/{w.live}/deals/{w.variant}", HOST, prepare=_deal
    ),
    "get_order": Route("GET", lambda w: f"/api/orders/{w.order}", HOST, prepare=_order),
    "fulfil_order": Route("POST", lambda w: f"/api/orders/{w.order}/fulfil", HOST, prepare=_order),
    "cancel_order": Route(
        "POST",
        lambda w: f"/api/orders/{w.order}/cancel",
        HOST,
        lambda w: {"reason": "r"},
        prepare=_order,
    ),
    "refund_order": Route(
        "POST",
        lambda w: f"/api/orders/{w.order}/refund",
        HOST,
        lambda w: {"amount_minor": 10},
        prepare=_order,
    ),
    "show_orders": Route("GET", lambda w: f"/api/shows/{w.live}/orders", HOST, prepare=_order),
    "create_stream_key": Route(
        "POST", lambda w: f"/api/shows/{w.live}/stream-keys", HOST, lambda w: {"label": "OBS"}
    ),
    "list_stream_keys": Route("GET", lambda w: f"/api/shows/{w.live}/stream-keys", HOST),
    "revoke_stream_key": Route(
        "DELETE",
        lambda w: f"/api/shows/{w.live}/stream-keys/{w.stream_key}",
        HOST,
        prepare=_stream_key,
    ),
    "create_webhook_endpoint": Route(
        "POST", lambda w: "/api/webhooks/endpoints", ADMIN, lambda w: {"url": "https://oms.test/h"}
    ),
    "list_webhook_endpoints": Route("GET", lambda w: "/api/webhooks/endpoints", ADMIN),
    "list_webhook_deliveries": Route("GET", lambda w: "/api/webhooks/deliveries", ADMIN),
}

SECRET = "test-secret-key-0123456789-abcdefghij"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _unsigned(claims: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def _refused(
    app: Starlette, world: World, route: Route
) -> dict[str, tuple[dict[str, str], int, str]]:
    """Each refused credential for ``route``: its headers, status and code."""
    tokens = parts(app).tokens
    show = world.scheduled if route.on_scheduled else world.live
    other = world.live if route.on_scheduled else world.scheduled
    role = Role.VIEWER if route.who == VIEWER else Role.HOST
    claims = {"iss": "liveshop", "sub": "u_1", "role": role.value, "exp": int(time.time()) + 60}
    if role is Role.HOST:
        claims["show"] = show
    expired = tokens.issue(role, name="x", show_id=show if role is Role.HOST else None, ttl_s=-5)
    cases: dict[str, tuple[dict[str, str], int, str]] = {
        "none": ({}, 401, "auth_missing"),
        "garbage": (_bearer("garbage"), 401, "auth_invalid"),
        "forged": (_bearer(jwt.encode(claims, "another-key" * 4, "HS256")), 401, "auth_invalid"),
        "alg_none": (_bearer(_unsigned(claims)), 401, "auth_invalid"),
        "expired": (_bearer(expired), 401, "auth_expired"),
    }
    if route.who == TOKEN:
        cases["admin_secret"] = (admin_headers(), 401, "auth_invalid")
        return cases
    staff = {
        "host": tokens.issue(Role.HOST, name="h", show_id=show),
        "host_other": tokens.issue(Role.HOST, name="h", show_id=other),
        "moderator": tokens.issue(Role.MODERATOR, name="m", show_id=show),
        "moderator_other": tokens.issue(Role.MODERATOR, name="m", show_id=other),
    }
    viewer = tokens.issue(Role.VIEWER, name="v")
    if route.who == ADMIN:
        cases["wrong_secret"] = (_bearer("wrong-" + ADMIN_SECRET), 401, "auth_invalid")
        for name, token in {**staff, "viewer": viewer}.items():
            cases[name] = (_bearer(token), 403, "forbidden_role")
    elif route.who == HOST:
        cases["host_other"] = (_bearer(staff["host_other"]), 403, "forbidden_show")
        for name in ("moderator", "moderator_other"):
            cases[name] = (_bearer(staff[name]), 403, "forbidden_role")
        cases["viewer"] = (_bearer(viewer), 403, "forbidden_role")
    else:  # VIEWER: staff of any show may not buy, cart or subscribe
        cases["admin_secret"] = (admin_headers(), 401, "auth_invalid")
        for name, token in staff.items():
            cases[name] = (_bearer(token), 403, "forbidden_role")
    return cases


def _right(app: Starlette, world: World, route: Route) -> list[dict[str, str]]:
    tokens = parts(app).tokens
    show = world.scheduled if route.on_scheduled else world.live
    if route.who == ADMIN:
        return [admin_headers()]
    if route.who == HOST:
        return [_bearer(tokens.issue(Role.HOST, name="h", show_id=show))]
    if route.who == VIEWER:
        return [world.viewer]
    return [
        world.viewer,
        _bearer(tokens.issue(Role.HOST, name="h", show_id=show)),
        _bearer(tokens.issue(Role.MODERATOR, name="m", show_id=world.scheduled)),
    ]


async def _world(client: httpx.AsyncClient) -> World:
    ids: list[str] = []
    for title in ("Live", "Later"):
        resp = await client.post("/api/shows", json={"title": title}, headers=admin_headers())
        ids.append(resp.json()["id"])
    live, scheduled = ids
    products = []
    for show, sku in ((live, "A"), (scheduled, "B")):
        body = _product(f"{sku}-1")
        body["variants"].append({**body["variants"][0], "sku": f"{sku}-0", "stock": 0})
        resp = await client.post(f"/api/shows/{show}/products", json=body, headers=admin_headers())
        assert resp.status_code == 201, resp.text
        products.append(resp.json())
    assert (await client.post(f"/api/shows/{live}/start", headers=admin_headers())).is_success
    viewer = (await client.post("/api/viewers", json={"name": "Vera"})).json()["token"]
    return World(
        live=live,
        scheduled=scheduled,
        product=products[0]["id"],
        variant=products[0]["variants"][0]["id"],
        sold_out=products[0]["variants"][1]["id"],
        viewer=_bearer(viewer),
    )


async def _state(app: Starlette, raw: aioredis.Redis) -> tuple[Any, ...]:
    """Every SQL row and every Redis key with its value (less each worker's heartbeat)."""
    rows = []
    async with parts(app).resources.sessions() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in VOLATILE_TABLES:
                continue
            result = await session.execute(select(table))
            rows.append(sorted(repr(tuple(r)) for r in result))
    keys = sorted([k async for k in raw.scan_iter(count=1000)])
    dumps = [(k, await raw.dump(k)) for k in keys]
    return tuple(rows), tuple(dumps)


async def _call(
    client: httpx.AsyncClient, world: World, route: Route, headers: dict[str, str]
) -> httpx.Response:
    headers = {**headers, "Idempotency-Key": "k-1"} if route.key else headers
    body = route.body(world) if route.body else None
    return await client.request(route.method, route.path(world), json=body, headers=headers)


@pytest.mark.parametrize("name", sorted(ROUTES))
async def test_every_route_answers_every_credential(
    client: httpx.AsyncClient, app: Starlette, redis_url: str, name: str
) -> None:
    route = ROUTES[name]
    world = await _world(client)
    if route.prepare:
        await route.prepare(client, world)
    await asyncio.sleep(0.3)  # the coalesced stock events of the setup have gone out
    raw = aioredis.Redis.from_url(redis_url)
    try:
        before = await _state(app, raw)
        if route.who != ANYONE:
            for case, (headers, status, code) in _refused(app, world, route).items():
                resp = await _call(client, world, route, headers)
                assert (case, resp.status_code, resp.json()["error"]["code"]) == (
                    case,
                    status,
                    code,
                ), resp.text
        assert await _state(app, raw) == before
    finally:
        await raw.aclose()
    for headers in _right(app, world, route):
        resp = await _call(client, world, route, headers)
        assert resp.is_success, (name, resp.status_code, resp.text)
