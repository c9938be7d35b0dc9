"""The admin and host HTTP API: shows, products, variants, stock, start/end, tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from checkout import catalog, users
from checkout.models import Product, Show, Variant
from checkout.show_state import ShowStatus
from core.db import utcnow
from core.roles import Role
from web.auth import AuthError, Principal, admin_ok, bearer
from web.errors import ApiError
from web.http import json_body
from web.parts import Parts, parts
from web.schemas import (
    FactsIn,
    PoliciesIn,
    ProductIn,
    ShowIn,
    ShowPatch,
    StockIn,
    TokenIn,
    VariantIn,
    ViewerIn,
    dump_time,
)

HOST_OR_ADMIN = frozenset({Role.HOST})


def _parts(request: Request) -> Parts:
    return parts(request.app)


def is_admin(request: Request) -> bool:
    return admin_ok(
        _parts(request).settings.admin_secret, bearer(request.headers.get("authorization"))
    )


def require_admin(request: Request) -> None:
    """401 without the admin secret (none, a wrong one, or a token that is not valid); 403
    for a valid token of a host, moderator or viewer, who may not use the admin API."""
    if _parts(request).settings.admin_secret is None:
        raise AuthError("admin_disabled", "the admin API is off: set LIVESHOP_ADMIN_SECRET")
    if is_admin(request):
        return
    given = bearer(request.headers.get("authorization"))
    if given is None:
        raise AuthError("auth_missing", "the admin secret is required")
    try:
        principal = _parts(request).tokens.verify(given)
    except AuthError as exc:
        if exc.code != "auth_invalid":
            raise
        raise AuthError("auth_invalid", "the admin secret is required") from None
    raise AuthError("forbidden_role", f"a {principal.role} may not use the admin API")


def require_token(request: Request) -> None:
    """401 for a missing, forged or expired token before anything is looked up."""
    if not is_admin(request):
        _parts(request).tokens.verify(bearer(request.headers.get("authorization")))


def require_show_role(request: Request, show_id: str, roles: frozenset[Role]) -> Principal | None:
    """None for the admin, else the token's principal if it may act on ``show_id``."""
    if is_admin(request):
        return None
    return _parts(request).tokens.require(
        bearer(request.headers.get("authorization")), show_id, roles
    )


def show_json(show: Show) -> dict[str, Any]:
    return {
        "id": show.id,
        "title": show.title,
        "status": show.status.value,
        "scheduled_at": dump_time(show.scheduled_at),
        "started_at": dump_time(show.started_at),
        "ended_at": dump_time(show.ended_at),
    }


def variant_json(variant: Variant) -> dict[str, Any]:
    return {
        "id": variant.id,
        "sku": variant.sku,
        "price": {"amount": variant.price_minor, "currency": variant.currency},
        "stock": variant.stock,
        "attributes": variant.attributes,
    }


def product_json(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "show_id": product.show_id,
        "name": product.name,
        "description": product.description,
        "image_url": product.image_url,
        "facts": dict(product.facts or {}),
        "variants": [variant_json(v) for v in product.variants],
    }


async def create_show(request: Request) -> Response:
    require_admin(request)
    body = await json_body(request, ShowIn)
    async with _parts(request).resources.sessions.begin() as session:
        show = await catalog.create_show(session, body.title, body.scheduled_at)
    return JSONResponse(show_json(show), status_code=201)


PUBLIC_ENDED_S = 24 * 3600  # the front door lists shows that ended this long ago at most
PUBLIC_SHOWS = 100  # and at most this many shows


async def list_shows(request: Request) -> Response:
    """The admin gets every show; anyone else (the front door) the live and upcoming
    shows and those that ended in the last day, newest first, at most PUBLIC_SHOWS. Each
    with its host's display name (null when it has no host yet)."""
    raw = request.query_params.get("status")
    try:
        status = ShowStatus(raw) if raw else None
    except ValueError:
        raise ApiError("invalid_input", "unknown status", fields={"status": "unknown"}) from None
    admin = is_admin(request)
    async with _parts(request).resources.sessions() as session:
        if admin:
            shows = await catalog.list_shows(session, status)
        else:
            since = utcnow() - timedelta(seconds=PUBLIC_ENDED_S)
            shows = await catalog.list_shows(session, status, ended_since=since, limit=PUBLIC_SHOWS)
        hosts = await catalog.host_names(session, shows)
    return JSONResponse(
        {"shows": [{**show_json(s), "host_name": hosts.get(s.host_id or "")} for s in shows]}
    )


async def get_show(request: Request) -> Response:
    show_id = request.path_params["show_id"]
    async with _parts(request).resources.sessions() as session:
        show = await catalog.get_show(session, show_id)
        products = await catalog.show_catalog(session, show_id)
    return JSONResponse(
        {
            **show_json(show),
            "policies": dict(show.policies or {}),
            "products": [product_json(p) for p in products],
        }
    )


async def update_show(request: Request) -> Response:
    """The show's title and schedule, changed by its host (or the admin)."""
    show_id = request.path_params["show_id"]
    require_show_role(request, show_id, HOST_OR_ADMIN)
    body = await json_body(request, ShowPatch)
    if not body.model_fields_set:
        raise ApiError(
            "invalid_input",
            "nothing to change",
            fields={"body": "give title or scheduled_at"},
        )
    if "title" in body.model_fields_set and body.title is None:
        raise ApiError("invalid_input", "a show needs a title", fields={"title": "required"})
    changes: dict[str, Any] = {"title": body.title}
    if "scheduled_at" in body.model_fields_set:
        changes["scheduled_at"] = body.scheduled_at
    async with _parts(request).resources.sessions.begin() as session:
        show = await catalog.update_show(session, show_id, **changes)
        payload = show_json(show)
    return JSONResponse(payload)


async def add_product(request: Request) -> Response:
    show_id = request.path_params["show_id"]
    require_show_role(request, show_id, HOST_OR_ADMIN)
    body = await json_body(request, ProductIn)
    spec = catalog.ProductSpec(
        name=body.name,
        description=body.description,
        image_url=body.image_url,
        variants=[_variant_spec(v) for v in body.variants],
        facts=dict(body.facts),
    )
    async with _parts(request).resources.sessions.begin() as session:
        product = await catalog.add_product(session, show_id, spec)
        payload = product_json(product)
    await _parts(request).bus.catalog_changed(show_id)
    return JSONResponse(payload, status_code=201)


def _variant_spec(v: VariantIn) -> catalog.VariantSpec:
    return catalog.VariantSpec(
        sku=v.sku,
        price_minor=v.price.amount,
        currency=v.price.currency,
        stock=v.stock,
        attributes=dict(v.attributes),
    )


async def add_variant(request: Request) -> Response:
    product_id = request.path_params["product_id"]
    require_token(request)
    async with _parts(request).resources.sessions() as session:
        show_id = (await catalog.get_product(session, product_id)).show_id
    require_show_role(request, show_id, HOST_OR_ADMIN)
    body = await json_body(request, VariantIn)
    async with _parts(request).resources.sessions.begin() as session:
        variant = await catalog.add_variant(session, product_id, _variant_spec(body))
        payload = variant_json(variant)
    await _parts(request).bus.catalog_changed(show_id)
    return JSONResponse(payload, status_code=201)


async def set_facts(request: Request) -> Response:
    """A product's facts, replaced: what automatic answers to shoppers are made from."""
    product_id = request.path_params["product_id"]
    require_token(request)
    async with _parts(request).resources.sessions() as session:
        show_id = (await catalog.get_product(session, product_id)).show_id
    require_show_role(request, show_id, HOST_OR_ADMIN)
    body = await json_body(request, FactsIn)
    async with _parts(request).resources.sessions.begin() as session:
        product = await catalog.set_facts(session, product_id, dict(body.facts))
        payload = product_json(product)
    await _parts(request).bus.catalog_changed(show_id)
    return JSONResponse(payload)


async def set_policies(request: Request) -> Response:
    """A show's policies (shipping, returns, payment, ...), replaced."""
    show_id = request.path_params["show_id"]
    require_show_role(request, show_id, HOST_OR_ADMIN)
    body = await json_body(request, PoliciesIn)
    async with _parts(request).resources.sessions.begin() as session:
        show = await catalog.set_policies(session, show_id, dict(body.policies))
        payload = {"show_id": show.id, "policies": dict(show.policies or {})}
    return JSONResponse(payload)


async def set_stock(request: Request) -> Response:
    variant_id = request.path_params["variant_id"]
    require_token(request)
    async with _parts(request).resources.sessions() as session:
        show_id = await catalog.variant_show_id(session, variant_id)
    require_show_role(request, show_id, HOST_OR_ADMIN)
    body = await json_body(request, StockIn)
    payload = await _parts(request).checkout.set_stock(variant_id, body.stock)
    return JSONResponse(payload)


async def start_show(request: Request) -> Response:
    return await _change_status(request, ShowStatus.LIVE)


async def end_show(request: Request) -> Response:
    return await _change_status(request, ShowStatus.ENDED)


async def _change_status(request: Request, target: ShowStatus) -> Response:
    show_id = request.path_params["show_id"]
    require_show_role(request, show_id, HOST_OR_ADMIN)
    async with _parts(request).resources.sessions.begin() as session:
        show = await catalog.change_status(session, show_id, target)
        payload = show_json(show)
    await _parts(request).bus.show_status_changed(show_id, target)
    return JSONResponse(payload)


async def issue_token(request: Request) -> Response:
    require_admin(request)
    body = await json_body(request, TokenIn)
    if body.role is not Role.VIEWER and not body.show_id:
        raise ApiError(
            "invalid_input",
            "hosts and moderators need a show",
            fields={"show_id": "required for this role"},
        )
    async with _parts(request).resources.sessions.begin() as session:
        show = await catalog.get_show(session, body.show_id) if body.show_id else None
        user = await users.ensure_user(session, body.role, body.name, body.user_id)
        if show is not None and body.role is Role.HOST and show.host_id is None:
            show.host_id = user.id  # the first host a show gets a token for is its host
    tokens = _parts(request).tokens
    token = tokens.issue(
        body.role, name=body.name, show_id=body.show_id, user_id=user.id, ttl_s=body.ttl_s
    )
    principal = tokens.verify(token)
    return JSONResponse(_token_json(token, principal), status_code=201)


async def viewer_identity(request: Request) -> Response:
    """An anonymous viewer's signed identity with the display name they chose."""
    body = await json_body(request, ViewerIn)
    tokens = _parts(request).tokens
    token = tokens.issue(Role.VIEWER, name=body.name)
    return JSONResponse(_token_json(token, tokens.verify(token)), status_code=201)


async def renew_token(request: Request) -> Response:
    """The bearer token again, for the same person, role and show, with a fresh expiry
    (pages renew before expiry so that a long show never logs anyone out)."""
    tokens = _parts(request).tokens
    token = tokens.renew(bearer(request.headers.get("authorization")))
    return JSONResponse(_token_json(token, tokens.verify(token)))


def _token_json(token: str, principal: Principal) -> dict[str, Any]:
    return {
        "token": token,
        "role": principal.role.value,
        "user_id": principal.user_id,
        "name": principal.name,
        "show_id": principal.show_id,
        "expires_at": principal.expires_at,
    }


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    resources = _parts(request).resources
    checks: dict[str, str] = {}
    try:
        async with resources.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # readiness reports any failure, it never raises
        checks["database"] = f"down: {type(exc).__name__}"
    try:
        await resources.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/api/shows", create_show, methods=["POST"]),
        Route("/api/shows", list_shows, methods=["GET"]),
        Route("/api/shows/{show_id}", get_show, methods=["GET"]),
        Route("/api/shows/{show_id}", update_show, methods=["PATCH"]),
        Route("/api/shows/{show_id}/products", add_product, methods=["POST"]),
        Route("/api/shows/{show_id}/policies", set_policies, methods=["PUT"]),
        Route("/api/products/{product_id}/facts", set_facts, methods=["PUT"]),
        Route("/api/shows/{show_id}/start", start_show, methods=["POST"]),
        Route("/api/shows/{show_id}/end", end_show, methods=["POST"]),
        Route("/api/products/{product_id}/variants", add_variant, methods=["POST"]),
        Route("/api/variants/{variant_id}/stock", set_stock, methods=["PUT"]),
        Route("/api/tokens", issue_token, methods=["POST"]),
        Route("/api/tokens/renew", renew_token, methods=["POST"]),
        Route("/api/viewers", viewer_identity, methods=["POST"]),
    ]
