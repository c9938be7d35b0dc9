"""The web layer's coded errors and the handlers that answer every coded error.

The shapes are built in ``core/errors.py`` (one HTTP body, one websocket message);
``tests/web/test_error_shape.py`` pins both.
"""

from __future__ import annotations

import logging
from typing import cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from checkout.errors import Unavailable
from core.errors import INTERNAL_ERROR, CodedError, error_body, error_response
from web.error_codes import CODES

log = logging.getLogger("liveshop.http")


class ApiError(CodedError):
    """An error raised by the web layer itself (bad JSON, oversize body, bad fields...)."""

    codes = CODES


async def handle_coded(request: Request, exc: Exception) -> Response:
    # Registered for CodedError only (web/app.py): every domain's errors derive from it.
    return error_response(cast(CodedError, exc))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


async def handle_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


async def handle_disconnect(request: Request, exc: Exception) -> Response:
    """A client that hung up before its body ended, on any route (signaling reads its
    offers itself): one line, not a traceback; nobody hears the 400, the metrics do."""
    route = getattr(request.scope.get("route"), "path", "unmatched")
    log.info("client disconnected mid-body", extra={"path": route})
    error = ApiError("client_disconnected", "the client hung up before the body ended")
    return error_response(error)


async def handle_redis(request: Request, exc: Exception) -> Response:
    """A Redis error no domain turned into a code (a raw call on the buy path while Redis
    restarts): retryable, like the inventory's own ``inventory_unavailable``, never a 500
    (uvicorn would close the keep-alive connection after one)."""
    log.warning("redis error reached the web layer: %r", exc)
    return error_response(
        Unavailable(
            "inventory_unavailable", "the inventory is unreachable, try again",
            extra={"retry": True},
        )
    )  # fmt: skip


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    return JSONResponse(error_body(INTERNAL_ERROR, "something went wrong on our side"), 500)
