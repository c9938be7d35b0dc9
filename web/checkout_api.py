"""The viewer's checkout API: one-tap buy, cart, notify-me; the host's deals.

Every route takes the viewer's signed token; the buyer is the token's subject, never a
field of the body. Domain rules live behind ``checkout.service.CheckoutService``; this
module only maps HTTP.
"""

from __future__ import annotations

from pydantic import AwareDatetime, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from checkout.events import EventSink
from checkout.payments import TestPaymentProvider
from checkout.service import CheckoutService
from checkout.show_state import ShowStatus
from config import Settings
from core.errors import CodedError, error_response
from core.group_commit import GroupCommit
from core.roles import Role
from web.api import HOST_OR_ADMIN, require_show_role
from web.auth import Principal, bearer
from web.errors import ApiError
from web.event_bus import EventBus
from web.http import json_body
from web.parts import parts
from web.payments_api import make_payment_provider
from web.resources import Resources
from web.schemas import Strict

VIEWER = frozenset({Role.VIEWER})


class BuyIn(Strict):
    variant_id: str = Field(min_length=1, max_length=64)
    quantity: int
    payment_method: str = Field(min_length=1, max_length=100)


class CartLineIn(Strict):
    variant_id: str = Field(min_length=1, max_length=64)
    quantity: int


class QuantityIn(Strict):
    quantity: int


class CheckoutIn(Strict):
    payment_method: str = Field(min_length=1, max_length=100)


class NotifyIn(Strict):
    variant_id: str = Field(min_length=1, max_length=64)


class DealIn(Strict):
    price_minor: int
    units: int
    ends_at: AwareDatetime = Field(strict=False)
    per_buyer_limit: int


async def open_checkout(
    resources: Resources, settings: Settings, events: EventSink, bus: EventBus
) -> CheckoutService:
    """Build and start the service for the app's lifespan (the caller closes it)."""
    group = GroupCommit.beside(resources.sessions)  # the attempts' and the ledger's writes
    payments = (
        make_payment_provider(settings, resources.sessions)
        if settings.payment_provider == "stripe"
        else TestPaymentProvider(
            resources.sessions, timeout_s=min(10.0, settings.payment_hold_s / 2), group=group
        )
    )
    service = CheckoutService(
        resources.sessions,
        resources.redis,
        events,
        payments,
        cart_hold_s=settings.cart_hold_s,
        payment_hold_s=settings.payment_hold_s,
        group=group,
    )
    await service.start()

    async def status_changed(show_id: str, status: ShowStatus) -> None:
        service.invalidate_show(show_id)
        if status is ShowStatus.LIVE:
            await service.prepare_show(show_id)
        elif status is ShowStatus.ENDED:
            await service.release_show_carts(show_id)

    bus.status_listeners.append(status_changed)
    return service


def _service(request: Request) -> CheckoutService:
    return parts(request.app).checkout


def _viewer(request: Request) -> Principal:
    """The viewer behind the bearer token: staff tokens (of any show) buy and cart nothing."""
    return parts(request.app).tokens.require(
        bearer(request.headers.get("authorization")), request.path_params["show_id"], VIEWER
    )


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if not key:
        raise ApiError(
            "idempotency_key_missing",
            "the Idempotency-Key header is required",
            fields={"Idempotency-Key": "required"},
        )
    return key


async def buy(request: Request) -> Response:
    try:
        viewer = _viewer(request)
        key = _idempotency_key(request)
        body = await json_body(request, BuyIn)
        result = await _service(request).buy_now(
            request.path_params["show_id"],
            viewer.user_id,
            body.variant_id,
            body.quantity,
            key,
            body.payment_method,
        )
    except CodedError as exc:
        # Answered here, not by the app's handlers: a drop refuses thousands of taps a
        # second, and the trip through Starlette's exception middleware cost a tenth of each.
        return error_response(exc)
    return JSONResponse(result.to_json(), status_code=200 if result.replayed else 201)


async def view_cart(request: Request) -> Response:
    viewer = _viewer(request)
    view = await _service(request).view_cart(request.path_params["show_id"], viewer.user_id)
    return JSONResponse(view.to_json())


async def add_to_cart(request: Request) -> Response:
    viewer = _viewer(request)
    body = await json_body(request, CartLineIn)
    view = await _service(request).add_to_cart(
        request.path_params["show_id"], viewer.user_id, body.variant_id, body.quantity
    )
    return JSONResponse(view.to_json())


async def change_cart_line(request: Request) -> Response:
    viewer = _viewer(request)
    body = await json_body(request, QuantityIn)
    view = await _service(request).set_cart_quantity(
        request.path_params["show_id"],
        viewer.user_id,
        request.path_params["variant_id"],
        body.quantity,
    )
    return JSONResponse(view.to_json())


async def remove_cart_line(request: Request) -> Response:
    viewer = _viewer(request)
    view = await _service(request).remove_from_cart(
        request.path_params["show_id"], viewer.user_id, request.path_params["variant_id"]
    )
    return JSONResponse(view.to_json())


async def checkout_cart(request: Request) -> Response:
    viewer = _viewer(request)
    key = _idempotency_key(request)
    body = await json_body(request, CheckoutIn)
    result = await _service(request).checkout_cart(
        request.path_params["show_id"], viewer.user_id, key, body.payment_method
    )
    return JSONResponse(result.to_json(), status_code=200 if result.replayed else 201)


async def notify_me(request: Request) -> Response:
    viewer = _viewer(request)
    body = await json_body(request, NotifyIn)
    await _service(request).notify_me(
        request.path_params["show_id"], viewer.user_id, body.variant_id
    )
    return JSONResponse({"subscribed": True, "variant_id": body.variant_id}, status_code=202)


async def list_deals(request: Request) -> Response:
    deals = await _service(request).deals(request.path_params["show_id"])
    return JSONResponse({"deals": [d.to_json() for d in deals]})


async def start_deal(request: Request) -> Response:
    show_id = request.path_params["show_id"]
    require_show_role(request, show_id, HOST_OR_ADMIN)
    body = await json_body(request, DealIn)
    deal = await _service(request).start_deal(
        show_id,
        request.path_params["variant_id"],
        price_minor=body.price_minor,
        units=body.units,
        ends_at=body.ends_at,
        per_buyer_limit=body.per_buyer_limit,
    )
    return JSONResponse(deal.to_json(), status_code=201)


async def stop_deal(request: Request) -> Response:
    show_id = request.path_params["show_id"]
    require_show_role(request, show_id, HOST_OR_ADMIN)
    await _service(request).stop_deal(show_id, request.path_params["variant_id"])
    return Response(status_code=204)


def routes() -> list[Route]:
    base = "/api/shows/{show_id}"
    return [
        Route(f"{base}/buy", buy, methods=["POST"]),
        Route(f"{base}/cart", view_cart, methods=["GET"]),
        Route(f"{base}/cart", add_to_cart, methods=["POST"]),
        Route(f"{base}/cart/checkout", checkout_cart, methods=["POST"]),
        Route(f"{base}/cart/{{variant_id}}", change_cart_line, methods=["PATCH"]),
        Route(f"{base}/cart/{{variant_id}}", remove_cart_line, methods=["DELETE"]),
        Route(f"{base}/notify", notify_me, methods=["POST"]),
        Route(f"{base}/deals", list_deals, methods=["GET"]),
        Route(f"{base}/deals/{{variant_id}}", start_deal, methods=["POST"]),
        Route(f"{base}/deals/{{variant_id}}", stop_deal, methods=["DELETE"]),
    ]
