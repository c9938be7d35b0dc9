"""Pins the websocket error shape as a real server sends it (tests/web/test_error_shape.py
pins the HTTP one): a refused request keeps its ref, the socket stays open; a refused
connection gets the shape just before its close."""

from __future__ import annotations

from checkout import catalog
from web.parts import parts

from .conftest import Client, LiveServer


async def _show(live: LiveServer) -> str:
    async with parts(live.app).resources.sessions.begin() as session:
        show = await catalog.create_show(session, "Shape")
    return show.id


async def test_a_refused_request_gets_the_shape_with_its_ref(live: LiveServer) -> None:
    client = await Client.open(live.url, await _show(live))
    try:
        await client.expect("hello")
        await client.ws.send('{"type": "chat", "ref": "c1", "text": "hi"}')
        assert await client.expect("error", ref="c1") == {
            "type": "error",
            "ref": "c1",
            "code": "auth_required",
            "message": "sign in (a viewer token) to take part",
            "fields": {},
        }
        await client.ws.send('{"type": "ping", "ref": "p1", "extra": 1}')
        assert await client.expect("error", ref="p1") == {
            "type": "error",
            "ref": "p1",
            "code": "invalid_input",
            "message": "some fields are not valid",
            "fields": {"extra": "unknown field"},
        }
        assert (await client.request("ping"))["code"] == "auth_required"  # still open
    finally:
        await client.close()


async def test_a_refused_connection_gets_the_shape_before_its_close(live: LiveServer) -> None:
    client = await Client.open(live.url, "no-such-show")
    try:
        assert await client.expect("error") == {
            "type": "error",
            "ref": None,
            "code": "show_not_found",
            "message": "no such show",
            "fields": {},
        }
        assert await client.close_code() == 4403, "the socket stayed open"
    finally:
        await client.close()
