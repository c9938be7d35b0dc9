"""HTTP details shared by the WHIP and WHEP endpoints (RFC 9725 and WHEP)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response

from .errors import SignalingError, error_response
from .ice import IceServer
from .sdp import SDP_CONTENT_TYPE

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Link, ETag",
}

Endpoint = Callable[[Request], Awaitable[Response]]


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


MAX_SDP_BYTES = 64 * 1024  # a browser or OBS offer is a few KB


async def read_sdp(request: Request) -> bytes:
    """The offer, at most MAX_SDP_BYTES, read without trusting Content-Length."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_SDP_BYTES:
            raise SignalingError("body_too_large", f"An offer is at most {MAX_SDP_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def token_digest(token: str | None) -> str:
    """What a session keeps of the bearer token that opened it."""
    return "" if token is None else hashlib.sha256(token.encode()).hexdigest()


def require_sdp(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != SDP_CONTENT_TYPE:
        raise SignalingError(
            "unsupported_media_type",
            f"The offer must be sent as {SDP_CONTENT_TYPE}.",
            fields={"content-type": content_type or "missing"},
        )


def add_link_headers(response: Response, ice_servers: Sequence[IceServer]) -> None:
    for server in ice_servers:
        response.headers.append("Link", server.link())


def with_errors(endpoint: Endpoint) -> Endpoint:
    """Turn SignalingError into the one JSON error shape; add CORS headers to every reply."""

    async def wrapped(request: Request) -> Response:
        try:
            response = await endpoint(request)
        except SignalingError as error:
            response = error_response(error)
        response.headers.update(CORS_HEADERS)
        return response

    return wrapped
