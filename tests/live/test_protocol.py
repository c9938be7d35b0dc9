"""Bad input gets a coded error and the socket stays open; rate limits; the docs test."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest

from core.roles import Role
from live.limits import RateLimits
from live.protocol import CLIENT_TYPES, SERVER_TYPES, ProtocolError, clean_text, parse
from tests.live.conftest import Client, LiveServer, seed_show
from web.parts import parts

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_message_type_is_documented() -> None:
    text = README.read_text()
    section = text.split("## Live protocol", 1)[1].split("\n## ", 1)[0]
    headings = set(re.findall(r"^### `?([a-z_]+)`?", section, flags=re.M))
    missing = sorted((CLIENT_TYPES | SERVER_TYPES) - headings)
    assert missing == [], f"undocumented live message types: {missing}"


@pytest.mark.parametrize(
    ("raw", "code", "fields"),
    [
        ("{not json", "malformed_json", {}),
        ("[1, 2]", "malformed_message", {}),
        ('{"type": "dance", "ref": "r"}', "unknown_type", {"type": "unknown"}),
        ('{"type": "chat", "ref": "r"}', "invalid_input", {"text": "required"}),
        ('{"type": "chat", "ref": "r", "text": 3}', "invalid_input", {"text": "expected str"}),
        ('{"type": "chat", "text": "hi"}', "invalid_input", {"ref": "a string of at most 64"}),
        (
            '{"type": "chat", "ref": "r", "text": "x", "html": 1}',
            "invalid_input",
            {"html": "unknown field"},
        ),
        (
            '{"type": "vote", "ref": "r", "poll_id": "p", "option": true}',
            "invalid_input",
            {"option": "expected int"},
        ),
        ('{"type": "ping", "ref": "' + "x" * 5000 + '"}', "message_too_large", {}),
    ],
)
def test_parse_refuses(raw: str, code: str, fields: dict[str, str]) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse(raw)
    assert refused.value.code == code
    assert refused.value.fields == fields


def test_clean_text_is_plain_text() -> None:
    assert clean_text(" <i>hi</i>\x00\x07 ") == "<i>hi</i>"
    with pytest.raises(ProtocolError):
        clean_text("\x00 ")
    with pytest.raises(ProtocolError):
        clean_text("x" * 501)


async def test_bad_input_is_answered_not_disconnected(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    client = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    await client.expect("snapshot")
    await client.ws.send("{oops")
    error = await client.expect("error")
    assert error == {
        "type": "error",
        "ref": None,
        "code": "malformed_json",
        "message": "the message is not valid JSON",
        "fields": {},
    }
    await client.ws.send('{"type":"dance","ref":"d1"}')
    assert (await client.expect("error"))["ref"] == "d1"
    await client.ws.send('{"type":"chat","ref":"big","text":"' + "y" * 5000 + '"}')
    assert (await client.expect("error"))["code"] == "message_too_large"
    await client.ws.send(b"\x00\x01")
    assert (await client.expect("error"))["code"] == "malformed_json"
    assert (await client.request("ping"))["type"] == "ok"
    await client.close()


async def test_rate_limits(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    parts(live.app).live.rate_limits = RateLimits({"chat": (0.01, 3), "tap": (0.01, 2)})
    token = live.token(Role.VIEWER, "Vera")
    client = await Client.open(live.url, seeded.show_id, token)
    codes = [(await client.request("chat", text=f"m{n}"))["type"] for n in range(4)]
    assert codes == ["ok", "ok", "ok", "error"]
    refused = await client.request("chat", text="again")
    assert refused["code"] == "rate_limited"
    # per viewer: a second socket of the same viewer shares the limit
    second = await Client.open(live.url, seeded.show_id, token)
    assert (await second.request("chat", text="other socket"))["code"] == "rate_limited"
    await second.close()
    taps = [
        (await client.request("tap", product_id=seeded.product_ids[0]))["type"] for _ in range(3)
    ]
    assert taps == ["ok", "ok", "error"]
    await client.close()
    # leaving and coming back gives no fresh burst: the buckets stay until they refill
    room = parts(live.app).live.rooms[seeded.show_id]
    async with asyncio.timeout(5):
        while room.hub.members_of(parts(live.app).tokens.verify(token).user_id):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    again = await Client.open(live.url, seeded.show_id, token)
    assert (await again.request("chat", text="back again"))["code"] == "rate_limited"
    await again.close()


async def test_a_burst_that_never_refills(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    parts(live.app).live.rate_limits = RateLimits({"chat": (0.0, 2)})
    client = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    codes = [(await client.request("chat", text=f"m{n}"))["type"] for n in range(3)]
    assert codes == ["ok", "ok", "error"]
    await client.close()


async def test_rate_limit_buckets_are_forgotten_once_full(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    parts(live.app).live.rate_limits = RateLimits({"chat": (20.0, 2)})
    token = live.token(Role.VIEWER, "Vera")
    client = await Client.open(live.url, seeded.show_id, token)
    assert (await client.request("chat", text="one"))["type"] == "ok"
    await client.close()
    room = parts(live.app).live.rooms[seeded.show_id]
    async with asyncio.timeout(5):  # full again 50 ms after the chat, then forgotten
        while room.buckets:  # noqa: ASYNC110 - polls the room's table
            await asyncio.sleep(0.01)


async def test_metrics_count_the_live_sockets_of_this_process(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    client = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    await client.expect("snapshot")
    async with httpx.AsyncClient(base_url=live.url.replace("ws://", "http://", 1)) as http:
        text = (await http.get("/metrics")).text
    assert "\nliveshop_live_sockets 1.0\n" in text
    assert "\nliveshop_live_rooms 1.0\n" in text
    await client.close()


def test_a_nul_character_is_refused_and_escaped_text_is_not() -> None:
    with pytest.raises(ProtocolError) as refused:
        parse('{"type": "chat", "ref": "r1", "text": "hi \\u0000"}')
    assert refused.value.code == "invalid_input"
    _, kind, fields = parse('{"type": "chat", "ref": "r1", "text": "a \\\\u0000 b"}')
    assert kind == "chat" and fields["text"] == "a \\u0000 b"
