"""Every field of every websocket request at the most the protocol accepts, on both
databases: what lands in SQL fits its column (PostgreSQL refuses what SQLite keeps), one
past the limit is a coded refusal, and an action whose log write fails is not half done."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select, text

from checkout.validation import MAX_PRICE_MINOR, MAX_QUANTITY
from core.roles import Role
from live.limits import RateLimits
from live.models import ModerationAction
from live.protocol import MAX_ID_CHARS, MAX_TEXT_CHARS, REQUESTS
from tests.live.conftest import Client, LiveServer, seed_show
from tests.state_digest import VOLATILE
from web.parts import parts

ID, OVER_ID = "i" * MAX_ID_CHARS, "i" * (MAX_ID_CHARS + 1)
TEXT, OVER_TEXT = "t" * MAX_TEXT_CHARS, "t" * (MAX_TEXT_CHARS + 1)
ID_FIELDS = (
    "product_id",
    "question_id",
    "poll_id",
    "variant_id",
    "message_id",
    "user_id",
    "canned_id",
)

# field -> (the most it accepts, one past it, the code of that refusal)
LIMITS: dict[str, tuple[Any, Any, str]] = {
    **{name: (ID, OVER_ID, "invalid_input") for name in ID_FIELDS},
    # a stream id at its longest (two 64-bit numbers)
    "message_id": (f"{2**64 - 1}-{2**64 - 1}", "1" * 30 + "-" + "1" * 34, "invalid_input"),
    "text": (TEXT, OVER_TEXT, "invalid_input"),
    "emoji": ("e" * 8, "e" * 9, "invalid_input"),
    "question": ("q" * 200, "q" * 201, "invalid_input"),
    "options": (["o" * 80] * 6, ["o" * 81, "b"], "invalid_input"),
    "words": (["w" * 2000], ["w" * 2001], "invalid_input"),
    "idempotency_key": ("k" * 100, "k" * 101, "idempotency_key_invalid"),
    "payment_method": ("p" * 100, "p" * 101, "payment_method_invalid"),
    "quantity": (MAX_QUANTITY, MAX_QUANTITY + 1, "quantity_above_limit"),
    "seconds": (24 * 3600, 24 * 3600 + 1, "invalid_input"),
    "option": (5, 6, "invalid_input"),
    "price_minor": (MAX_PRICE_MINOR, MAX_PRICE_MINOR + 1, "invalid_deal"),
    "units": (20, 10_000_001, "invalid_deal"),
    "duration_s": (24 * 3600, 24 * 3600 + 1, "invalid_input"),
    "per_buyer_limit": (MAX_QUANTITY, MAX_QUANTITY + 1, "invalid_deal"),
}

# What a field holds when another field of the request is at its limit.
NOMINAL: dict[str, Any] = {
    "text": "hello",
    "emoji": "*",
    "question": "Which one?",
    "options": ["a", "b"],
    "words": ["spam"],
    "quantity": 1,
    "seconds": 30,
    "option": 0,
    "price_minor": 500,
    "units": 1,
    "duration_s": 60,
    "per_buyer_limit": 1,
    "payment_method": "pm_card_ok",
    "user_id": "v_someone",
}


def _sender(kind: str) -> Role:
    roles = REQUESTS[kind].roles
    return next(role for role in (Role.VIEWER, Role.MODERATOR, Role.HOST) if role in roles)


def _cases() -> list[tuple[str, str]]:
    return [(kind, name) for kind, spec in sorted(REQUESTS.items()) for name in spec.fields]


def test_every_field_has_a_limit() -> None:
    assert {name for _, name in _cases()} <= set(LIMITS)


@pytest.fixture
async def room(live: LiveServer) -> AsyncIterator[tuple[LiveServer, dict[Role, Client], Any]]:
    seeded = await seed_show(live.app, stock=20)
    # Generous buckets: the test is about sizes, not rates.
    parts(live.app).live.rate_limits = RateLimits({k: (100.0, 500) for k in REQUESTS})
    clients = {}
    for role in (Role.VIEWER, Role.HOST, Role.MODERATOR):
        token = live.token(role, "n" * 80, seeded.show_id)  # the longest token name
        clients[role] = await Client.open(live.url, seeded.show_id, token)
        await clients[role].expect("snapshot")
    try:
        yield live, clients, seeded
    finally:
        for client in clients.values():
            await client.close()


def _nominal(kind: str, seeded: Any, real_ids: dict[str, str]) -> dict[str, Any]:
    real = {
        "product_id": seeded.product_ids[0],
        "variant_id": seeded.variant_ids[0],
        **real_ids,
    }
    return {
        name: real.get(name, NOMINAL.get(name, "x" * 8))
        for name, (_, required) in REQUESTS[kind].fields.items()
        if required or name in LIMITS
    }


async def test_the_most_each_field_accepts_fits_and_one_more_is_refused(
    room: tuple[LiveServer, dict[Role, Client], Any],
) -> None:
    live, clients, seeded = room
    question = await clients[Role.VIEWER].request("ask", text="Is it warm?")
    message = await clients[Role.VIEWER].request("chat", text="hi")
    poll = await clients[Role.HOST].request("open_poll", question="Colour?", options=["c"] * 6)
    real_ids = {
        "question_id": question["question_id"],
        "message_id": message["message_id"],
        "poll_id": poll["poll_id"],
    }
    unforeseen: list[tuple[str, str, dict[str, Any]]] = []
    for kind, name in _cases():
        fields = _nominal(kind, seeded, real_ids)
        most, over, code = LIMITS[name]
        client = clients[_sender(kind)]
        if REQUESTS[kind].reply:
            reply = await client.request(kind, **{**fields, name: most})
            if reply.get("code") == "internal_error":
                unforeseen.append((kind, name, reply))
        else:  # (answered only when refused)
            await client.ws.send(json.dumps({"type": kind, "ref": "most", **fields, name: most}))
        refused = await client.request(kind, **{**fields, name: over})
        assert (kind, name, refused["type"], refused["code"]) == (kind, name, "error", code)
        if code == "invalid_input" and name not in ("question", "options"):  # (named "text")
            assert name in refused["fields"], (kind, name, refused)
    assert unforeseen == []
    async with parts(live.app).resources.sessions() as session:
        logged = await session.scalar(
            select(func.count()).where(ModerationAction.target_viewer_id == ID)
        )
    # mute, ban, shadow_ban, slow_mode, viewer_orders, unmute, unban, unshadow_ban of a
    # 64-character id
    assert logged == 8


@pytest.fixture
async def refusing_log(live: LiveServer) -> AsyncIterator[None]:
    """The database refuses every moderation-log row while the test runs."""
    engine = parts(live.app).resources.engine
    sqlite = engine.dialect.name == "sqlite"
    create = (
        [
            "CREATE TRIGGER refuse_log BEFORE INSERT ON moderation_actions "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        if sqlite
        else [
            "CREATE FUNCTION refuse_log() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            "CREATE TRIGGER refuse_log BEFORE INSERT ON moderation_actions "
            "FOR EACH ROW EXECUTE FUNCTION refuse_log()",
        ]
    )
    drop = (
        ["DROP TRIGGER refuse_log"]
        if sqlite
        else ["DROP TRIGGER refuse_log ON moderation_actions", "DROP FUNCTION refuse_log()"]
    )
    async with engine.begin() as conn:
        for statement in create:
            await conn.execute(text(statement))
    try:
        yield
    finally:
        async with engine.begin() as conn:
            for statement in drop:
                await conn.execute(text(statement))


async def _keys(redis: aioredis.Redis) -> dict[str, bytes | None]:
    """Every key and its value, but the viewer counts the hub rewrites every second."""
    return {
        k: await redis.dump(k)
        async for k in redis.scan_iter(count=1000)
        if not VOLATILE.fullmatch(k.decode() if isinstance(k, bytes) else str(k))
    }


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("mute", {"seconds": 60}),
        ("ban", {}),
        ("shadow_ban", {}),
        ("slow_mode", {"seconds": 30}),
        ("delete_chat", {}),
        ("blocked_words", {"words": ["spam"]}),
    ],
)
async def test_an_action_whose_log_write_fails_is_not_applied(
    live: LiveServer, redis_url: str, refusing_log: None, kind: str, fields: dict[str, Any]
) -> None:
    seeded = await seed_show(live.app)
    viewer = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    mod = await Client.open(
        live.url, seeded.show_id, live.token(Role.MODERATOR, "Mo", seeded.show_id)
    )
    raw = aioredis.Redis.from_url(redis_url)
    try:
        chat = await viewer.request("chat", text="first")
        uid = (await viewer.expect("chat", text="first"))["user_id"]
        before = await _keys(raw)
        ids = {"message_id": chat["message_id"], "user_id": uid}
        target = {k: v for k, v in ids.items() if k in REQUESTS[kind].fields}
        reply = await mod.request(kind, **target, **fields)
        assert (reply["type"], reply["code"]) == ("error", "internal_error")
        assert await _keys(raw) == before
        assert (await viewer.request("chat", text="second"))["type"] == "ok"
    finally:
        await raw.aclose()
        for client in (viewer, mod):
            await client.close()
