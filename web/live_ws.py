"""The live websocket endpoint: ``/live/{show_id}?last_id=...``.

The token travels in the handshake's ``Sec-WebSocket-Protocol`` header, never in the URL
(servers and proxies log URLs): the client offers ``liveshop, token.<token>`` and the
server selects ``liveshop``. Old clients' ``?token=`` is still accepted; the log filter
(web/log_redaction.py) keeps it out of every log line. The endpoint authenticates the
participant, then hands the socket to live's service. Refusals are sent in the websocket
error shape and the socket is closed with 4401 (no valid token), 4403 (a token that may
not join this show, or a banned viewer) or 4429 (too many sockets of one identity or
address: web/socket_limits.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from core.errors import INTERNAL_ERROR, ws_error
from core.roles import Role
from live.outbox import AsgiSink, Sink
from live.protocol import CLOSE_AUTH, CLOSE_FORBIDDEN, ProtocolError, dumps
from live.service import LiveService
from live.session import Participant
from web.auth import AuthError, TokenIssuer
from web.errors import ApiError
from web.live_sink import DirectSink
from web.parts import parts
from web.socket_limits import CLOSE_TOO_MANY

log = logging.getLogger("liveshop.live")

RAW_SEND = "liveshop.raw_send"
SUBPROTOCOL = "liveshop"
TOKEN_PROTOCOL = "token."  # noqa: S105 (a prefix, not a secret)


class RawSendMiddleware:
    """Keeps the server's own ``send`` in a websocket scope, before any wrapper.

    ``DirectSink`` (web/live_sink.py) writes live's pre-built frames straight to uvicorn's
    protocol through it; with any other server live's ``AsgiSink`` awaits ASGI sends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[RAW_SEND] = send
        await self.app(scope, receive, send)


class _Incoming:
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def receive_text(self) -> str | None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            text = message.get("text")
            if text is not None:
                return str(text)
            if message.get("bytes") is not None:
                return "\x00binary"  # refused by the parser as malformed JSON


def _sink(websocket: WebSocket) -> Sink:
    direct = DirectSink.of(websocket.scope.get(RAW_SEND))
    if direct is not None:
        return direct
    return AsgiSink(websocket.send_text, lambda code, reason: websocket.close(code, reason))


async def _refuse(websocket: WebSocket, code: str, message: str, close_code: int) -> None:
    await websocket.send_text(dumps(ws_error(code, message)))
    await websocket.close(close_code, code)


def _offered_token(websocket: WebSocket) -> str | None:
    """The token of a ``token.<token>`` subprotocol, else of the (old) ``?token=`` query."""
    for protocol in websocket.scope.get("subprotocols", ()):
        if protocol.startswith(TOKEN_PROTOCOL):
            return str(protocol.removeprefix(TOKEN_PROTOCOL))
    return websocket.query_params.get("token")


def _subprotocol(websocket: WebSocket) -> str | None:
    """``liveshop`` when the client offered it (a browser that offered subprotocols fails
    a handshake that selects none)."""
    return SUBPROTOCOL if SUBPROTOCOL in websocket.scope.get("subprotocols", ()) else None


def _participant(
    tokens: TokenIssuer, token: str | None, show_id: str
) -> tuple[Participant | None, float | None]:
    """Who joins, and when their token runs out (anonymous: never)."""
    if not token:
        return None, None
    principal = tokens.verify(token)
    if not principal.can_act_on(show_id):
        raise AuthError("forbidden_show", "this token is for another show")
    return Participant(principal.user_id, principal.name, principal.role), principal.expires_at


async def live_socket(websocket: WebSocket) -> None:
    show_id: str = websocket.path_params["show_id"]
    made = parts(websocket.app)
    await websocket.accept(subprotocol=_subprotocol(websocket))
    try:
        who, expires_at = _participant(made.tokens, _offered_token(websocket), show_id)
    except AuthError as exc:
        close = CLOSE_AUTH if exc.http_status == 401 else CLOSE_FORBIDDEN
        await _refuse(websocket, exc.code, exc.message, close)
        return
    address = websocket.client.host if websocket.client else None
    try:
        held = made.sockets.take(who.user_id if who else None, address)
    except ApiError as exc:  # (too_many_sockets)
        await _refuse(websocket, exc.code, exc.message, CLOSE_TOO_MANY)
        return
    try:
        await _admitted(websocket, made.live, show_id, who, expires_at)
    finally:
        made.sockets.release(held)


async def _admitted(
    websocket: WebSocket,
    service: LiveService,
    show_id: str,
    who: Participant | None,
    expires_at: float | None,
) -> None:
    """Serve a socket whose token (if any) is valid and whose identity is under its limit."""
    if who is not None and who.role is Role.VIEWER:
        room = None
        try:
            room = await service.room(show_id)
        except ProtocolError as exc:
            await _refuse(websocket, exc.code, exc.message, CLOSE_FORBIDDEN)
            return
        if await room.moderation.is_banned(who.user_id):
            await _refuse(websocket, "banned", "you are banned from this show", CLOSE_FORBIDDEN)
            return
    # A socket lives no longer than its token: at expiry it is closed with auth_expired
    # (4401), and the page reconnects with a fresh token, resuming by last_id.
    ends = (
        None
        if expires_at is None
        else asyncio.get_running_loop().time() + (expires_at - time.time())
    )
    try:
        async with asyncio.timeout_at(ends):
            await service.serve(
                _Incoming(websocket),
                _sink(websocket),
                show_id,
                who,
                websocket.query_params.get("last_id"),
            )
    except TimeoutError:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # (it may be gone)
            await _refuse(websocket, "auth_expired", "the token has expired", CLOSE_AUTH)
    except ProtocolError as exc:
        await _refuse(websocket, exc.code, exc.message, CLOSE_FORBIDDEN)
    except WebSocketDisconnect:
        return
    except Exception:  # (Redis down mid-join, a bug): say so, and let the client resume
        log.exception("live socket failed", extra={"show": show_id})
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # (it may be gone)
            await _refuse(websocket, INTERNAL_ERROR, "something went wrong on our side", 1011)


def routes() -> list[BaseRoute]:
    return [WebSocketRoute("/live/{show_id}", live_socket)]
