"""A deeply nested websocket frame gets a coded ``error`` and the socket stays open."""

from __future__ import annotations

import logging

import pytest

from core.json_depth import MAX_DEPTH
from core.roles import Role
from live.protocol import MAX_MESSAGE_BYTES, ProtocolError, parse
from tests.live.conftest import Client, LiveServer, seed_show


def _deep_frame(depth: int) -> str:
    return '{"type":"chat","ref":"r1","text":' + "[" * depth + "]" * depth + "}"


def test_parse_refuses_nesting_past_the_limit() -> None:
    frame = _deep_frame(2000)
    assert len(frame.encode()) <= MAX_MESSAGE_BYTES
    with pytest.raises(ProtocolError) as refused:
        parse(frame)
    assert refused.value.code == "json_too_deep"
    with pytest.raises(ProtocolError) as shallow:
        parse(_deep_frame(MAX_DEPTH - 1))
    assert shallow.value.code == "invalid_input"  # parsed, then refused for its field


async def test_a_deep_frame_is_refused_and_the_socket_stays(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed_show(live.app)
    vera = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    await vera.expect("snapshot")
    await vera.ws.send(_deep_frame(2000))
    error = await vera.expect("error")
    assert error["code"] == "json_too_deep" and error["ref"] is None
    assert (await vera.request("chat", text="still here"))["type"] == "ok"
    await vera.close()
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]
