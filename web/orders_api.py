"""Staff's order API: an order with its history, a show's orders, and the moves after the
buy (fulfil, cancel, refund). The admin and the host of the order's show may use it.
A viewer reads their own orders, in every show (``GET /api/orders``).

The rules (which moves, refunds, stock) live in ``checkout.order_actions`` behind
``CheckoutService``; this module only maps HTTP.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from checkout.models import REASON_MAX_CHARS, OrderStatus
from checkout.results import OrderDetail
from checkout.service import CheckoutService
from core.roles import Role
from web.api import HOST_OR_ADMIN, require_show_role, require_token
from web.auth import AuthError, bearer
from web.errors import ApiError
from web.http import M, json_body
from web.parts import parts
from web.schemas import Strict

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=REASON_MAX_CHARS)]


class CancelIn(Strict):
    reason: Reason | None = None


class RefundIn(Strict):
    amount_minor: int | None = Field(default=None, ge=1, le=2**63 - 1)
    reason: Reason | None = None


def _service(request: Request) -> CheckoutService:
    return parts(request.app).checkout


async def _staff(request: Request) -> tuple[str, str]:
    """The order id and who acts on it ("admin" or the host's user id): 401 before the
    order is looked up, 404 ``order_not_found``, then 403 for anyone but the admin and the
    host of the order's show."""
    order_id = request.path_params["order_id"]
    require_token(request)
    show_id = await _service(request).order_show(order_id)
    principal = require_show_role(request, show_id, HOST_OR_ADMIN)
    return order_id, "admin" if principal is None else principal.user_id


async def _optional_body(request: Request, model: type[M]) -> M:
    """The JSON body, or the model's defaults when the request has none."""
    if not request.headers.get("content-type") and request.headers.get("content-length", "0") in (
        "0",
        "",
    ):
        return model()
    return await json_body(request, model)


def _answer(detail: OrderDetail) -> Response:
    return JSONResponse(detail.to_json())


async def get_order(request: Request) -> Response:
    order_id, _ = await _staff(request)
    return _answer(await _service(request).order(order_id))


async def fulfil_order(request: Request) -> Response:
    order_id, actor = await _staff(request)
    return _answer(await _service(request).fulfil_order(order_id, actor))


async def cancel_order(request: Request) -> Response:
    order_id, actor = await _staff(request)
    body = await _optional_body(request, CancelIn)
    return _answer(await _service(request).cancel_order(order_id, actor, body.reason))


async def refund_order(request: Request) -> Response:
    order_id, actor = await _staff(request)
    body = await _optional_body(request, RefundIn)
    key = request.headers.get("idempotency-key")
    detail = await _service(request).refund_order(
        order_id, actor, body.amount_minor, body.reason, key
    )
    return _answer(detail)


async def show_orders(request: Request) -> Response:
    show_id = request.path_params["show_id"]
    require_show_role(request, show_id, HOST_OR_ADMIN)
    raw = request.query_params.get("status")
    try:
        status = OrderStatus(raw) if raw else None
    except ValueError:
        raise ApiError("invalid_input", "unknown status", fields={"status": "unknown"}) from None
    orders = await _service(request).show_orders(show_id, status)
    return JSONResponse({"orders": [o.to_json() for o in orders]})


MY_ORDERS_LIMIT = 50
"""The most orders one page of ``GET /api/orders`` holds (20 when ``limit`` is not given)."""
_CURSOR_MAX_CHARS = 200


def _cursor(at: datetime, order_id: str) -> str:
    raw = f"{at.isoformat()}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(value: str) -> tuple[datetime, str]:
    """(created_at, order id) of the last order of the page before: ``invalid_input``
    naming ``cursor`` for anything this API did not hand out."""
    try:
        if len(value) > _CURSOR_MAX_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        at_text, _, order_id = raw.partition("|")
        at = datetime.fromisoformat(at_text)
        if not order_id or at.tzinfo is None:
            raise ValueError("incomplete")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(
            "invalid_input", "cursor is not one this API gave", fields={"cursor": "invalid"}
        ) from None
    return at, order_id


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MY_ORDERS_LIMIT:
        raise ApiError(
            "invalid_input",
            f"limit is a whole number from 1 to {MY_ORDERS_LIMIT}",
            fields={"limit": f"1-{MY_ORDERS_LIMIT}"},
        )
    return int(raw)


async def my_orders(request: Request) -> Response:
    """The bearer's own orders across shows, newest first, a page at a time: a viewer
    token only (the buyer is the token's subject, never a parameter)."""
    principal = parts(request.app).tokens.verify(bearer(request.headers.get("authorization")))
    if principal.role is not Role.VIEWER:
        raise AuthError("forbidden_role", f"a {principal.role} has no orders of their own")
    unknown = sorted(set(request.query_params) - {"limit", "cursor"})
    if unknown:
        raise ApiError(
            "invalid_input",
            "unknown query parameter",
            fields=dict.fromkeys(unknown, "unknown parameter"),
        )
    limit = _limit(request.query_params.get("limit"))
    raw_cursor = request.query_params.get("cursor")
    before = _read_cursor(raw_cursor) if raw_cursor is not None else None
    found = await _service(request).buyer_orders(principal.user_id, limit + 1, before)
    page = found[:limit]
    more = len(found) > limit
    next_cursor = _cursor(page[-1].created_at, page[-1].order_id) if more else None
    return JSONResponse({"orders": [o.to_json() for o in page], "next_cursor": next_cursor})


def routes() -> list[Route]:
    base = "/api/orders/{order_id}"
    return [
        Route("/api/orders", my_orders, methods=["GET"]),
        Route(base, get_order, methods=["GET"]),
        Route(f"{base}/fulfil", fulfil_order, methods=["POST"]),
        Route(f"{base}/cancel", cancel_order, methods=["POST"]),
        Route(f"{base}/refund", refund_order, methods=["POST"]),
        Route("/api/shows/{show_id}/orders", show_orders, methods=["GET"]),
    ]
