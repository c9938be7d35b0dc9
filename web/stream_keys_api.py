"""The stream keys' HTTP API: the show's host (or the admin) makes, lists and revokes the
keys OBS publishes with (``web/stream_keys.py``). A revoked key is refused at the next WHIP
request, and the session it opened is ended (``SignalingService.recheck_publisher``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from checkout import catalog
from core.roles import Role
from web import stream_keys
from web.api import require_show_role
from web.http import json_body
from web.parts import parts
from web.schemas import Strict, dump_time
from web.stream_keys import LABEL_MAX_CHARS, StreamKey

HOST_OR_ADMIN = frozenset({Role.HOST})
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LABEL_MAX_CHARS)
]


class StreamKeyIn(Strict):
    label: Label = "OBS"


def key_json(row: StreamKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "show_id": row.show_id,
        "label": row.label,
        "created_at": dump_time(row.created_at),
        "last_used_at": dump_time(row.last_used_at),
        "revoked_at": dump_time(row.revoked_at),
    }


def whip_url(request: Request, show_id: str) -> str:
    public = parts(request.app).settings.public_url
    base = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    return f"{base}/whip/{show_id}"


async def create_key(request: Request) -> Response:
    show_id = request.path_params["show_id"]
    principal = require_show_role(request, show_id, HOST_OR_ADMIN)
    body = await json_body(request, StreamKeyIn)
    async with parts(request.app).resources.sessions.begin() as session:
        await catalog.get_show(session, show_id, for_update=True)  # (one count at a time)
        row, key = await stream_keys.create(
            session, show_id, body.label, principal.user_id if principal else "admin"
        )
        payload = {**key_json(row), "key": key, "whip_url": whip_url(request, show_id)}
    return JSONResponse(payload, status_code=201, headers={"Cache-Control": "no-store"})


async def list_keys(request: Request) -> Response:
    show_id = request.path_params["show_id"]
    require_show_role(request, show_id, HOST_OR_ADMIN)
    async with parts(request.app).resources.sessions() as session:
        await catalog.get_show(session, show_id)
        rows = await stream_keys.list_for_show(session, show_id)
        payload = {
            "stream_keys": [key_json(r) for r in rows],
            "whip_url": whip_url(request, show_id),
            "limit": stream_keys.MAX_ACTIVE_PER_SHOW,
        }
    return JSONResponse(payload)


async def revoke_key(request: Request) -> Response:
    show_id = request.path_params["show_id"]
    require_show_role(request, show_id, HOST_OR_ADMIN)
    made = parts(request.app)
    async with made.resources.sessions.begin() as session:
        await stream_keys.revoke(session, show_id, request.path_params["key_id"])
    # A session this key opened here ends now; one in another process at its next check.
    await made.video.recheck_publisher(show_id)
    return Response(status_code=204)


def routes() -> list[Route]:
    base = "/api/shows/{show_id}/stream-keys"
    return [
        Route(base, create_key, methods=["POST"]),
        Route(base, list_keys, methods=["GET"]),
        Route(f"{base}/{{key_id}}", revoke_key, methods=["DELETE"]),
    ]
