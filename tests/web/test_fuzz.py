"""Hostile bodies on every JSON route (hypothesis, bounded): no 5xx, no error logged,
every refusal in the one error shape, and no state changed by a refused request.

Each route gets the token it needs (admin, the show's host, a viewer) so the bodies reach
validation and the domain, on a seeded live show. Deterministic (``derandomize``), with a
few explicit examples that must always run (deep nesting, NaN, invalid UTF-8).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from starlette.applications import Starlette

from core.roles import Role
from tests.conftest import admin_headers
from tests.hostile import json_bodies, nested
from tests.live.conftest import Seeded, seed_show
from tests.state_digest import changes, digest
from web.parts import parts

EXAMPLES_PER_ROUTE = 25
STOCK_EVENT_S = 0.3
_keys = itertools.count(1)


@dataclass(frozen=True)
class JsonRoute:
    method: str
    path: str  # {show}, {product}, {variant} are filled from the seeded show
    who: str  # admin, host, viewer, anyone
    valid: dict[str, Any]
    keyed: bool = False  # takes an Idempotency-Key


VARIANT = {"sku": "FZ-1", "price": {"amount": 1000, "currency": "EUR"}, "stock": 3}
ROUTES = [
    JsonRoute("POST", "/api/shows", "admin", {"title": "Fuzz"}),
    JsonRoute("POST", "/api/shows/{show}/products", "host", {"name": "P", "variants": [VARIANT]}),
    JsonRoute("POST", "/api/products/{product}/variants", "host", VARIANT),
    JsonRoute("PUT", "/api/variants/{variant}/stock", "host", {"stock": 5}),
    JsonRoute("POST", "/api/tokens", "admin", {"role": "viewer", "name": "Vera"}),
    JsonRoute("POST", "/api/viewers", "anyone", {"name": "Vera"}),
    JsonRoute(
        "POST",
        "/api/shows/{show}/buy",
        "viewer",
        {"variant_id": "{variant}", "quantity": 1, "payment_method": "pm_card_ok"},
        keyed=True,
    ),
    JsonRoute(
        "POST", "/api/shows/{show}/cart", "viewer", {"variant_id": "{variant}", "quantity": 1}
    ),
    JsonRoute("PATCH", "/api/shows/{show}/cart/{variant}", "viewer", {"quantity": 1}),
    JsonRoute(
        "POST",
        "/api/shows/{show}/cart/checkout",
        "viewer",
        {"payment_method": "pm_card_declined"},
        keyed=True,
    ),
    JsonRoute("POST", "/api/shows/{show}/notify", "viewer", {"variant_id": "{variant}"}),
    JsonRoute(
        "POST",
        "/api/shows/{show}/deals/{variant}",
        "host",
        {"price_minor": 500, "units": 2, "ends_at": "2099-01-01T00:00:00Z", "per_buyer_limit": 1},
    ),
]


def _fill(text: str, seeded: Seeded) -> str:
    return (
        text.replace("{show}", seeded.show_id)
        .replace("{product}", seeded.product_ids[0])
        .replace("{variant}", seeded.variant_ids[0])
    )


def _headers(app: Starlette, route: JsonRoute, seeded: Seeded) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    tokens = parts(app).tokens
    if route.who == "admin":
        headers.update(admin_headers())
    elif route.who == "host":
        token = tokens.issue(Role.HOST, name="Hana", show_id=seeded.show_id)
        headers["authorization"] = f"Bearer {token}"
    elif route.who == "viewer":
        headers["authorization"] = f"Bearer {tokens.issue(Role.VIEWER, name='Vera')}"
    if route.keyed:
        headers["idempotency-key"] = f"fuzz-{next(_keys)}"
    return headers


def _one_error_shape(body: Any) -> bool:
    if not isinstance(body, dict) or set(body) != {"error"}:
        return False
    error = body["error"]
    return (
        isinstance(error, dict)
        and set(error) - {"extra"} == {"code", "message", "fields"}
        and isinstance(error["code"], str)
        and isinstance(error["message"], str)
        and isinstance(error["fields"], dict)
        and isinstance(error.get("extra", {}), dict)
        and error.get("extra") != {}  # (present only when there is some)
    )


@pytest.fixture
async def raw_client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets a 500 as a response (the server's log says what it was)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def _send(
    app: Starlette, http: httpx.AsyncClient, route: JsonRoute, seeded: Seeded, body: bytes
) -> list[str]:
    """One request; the problems it shows (none when all is well)."""
    resources = parts(app).resources
    before = await digest(resources.engine, resources.redis)
    resp = await http.request(
        route.method,
        _fill(route.path, seeded),
        content=_fill(body.decode("utf-8", "surrogateescape"), seeded).encode(
            "utf-8", "surrogateescape"
        ),
        headers=_headers(app, route, seeded),
    )
    label = f"{route.method} {route.path} {body[:120]!r} -> {resp.status_code} {resp.text[:200]}"
    if resp.status_code >= 500:
        return [f"5xx: {label}"]
    if resp.status_code < 400:
        # What a success leaves behind (after-order work, stock events coalesced every
        # 0.25 s) must land before the next request's "before".
        await parts(app).checkout.settled()
        await asyncio.sleep(STOCK_EVENT_S)
        return []
    problems = [] if _one_error_shape(resp.json()) else [f"error shape: {label}"]
    changed = changes(before, await digest(resources.engine, resources.redis))
    return problems + ([f"refused but changed {changed}: {label}"] if changed else [])


def _fuzz_route(
    loop: asyncio.AbstractEventLoop,
    app: Starlette,
    http: httpx.AsyncClient,
    route: JsonRoute,
    seeded: Seeded,
) -> None:
    """Runs in a worker thread: hypothesis drives, the test's loop serves each request."""

    @settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # (no shrinking: the time stays bounded)
        suppress_health_check=list(HealthCheck),
    )
    @given(body=json_bodies(route.valid))
    @example(body=nested(3000).encode())
    @example(body=b'{"a": NaN}')
    @example(body=b"\xff\xfe")
    def check(body: bytes) -> None:
        future = asyncio.run_coroutine_threadsafe(_send(app, http, route, seeded, body), loop)
        problems = future.result(timeout=30)
        assert problems == [], problems

    check()


async def test_hostile_bodies_on_every_json_route(
    app: Starlette, raw_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed_show(app, products=2, stock=3)
    loop = asyncio.get_running_loop()
    for route in ROUTES:
        await asyncio.to_thread(_fuzz_route, loop, app, raw_client, route, seeded)
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert logged == [], [f"{r.name}: {r.getMessage()}" for r in logged]
