"""Hostile websocket frames against a real server (hypothesis, bounded): every frame is
answered in the one error shape or ``ok``, never ``internal_error``; the socket stays open;
nothing is logged as an error; and a refused frame changes no state (SQL rows, Redis).

Frames are built from the request table (``live/protocol.py``'s ``REQUESTS``): each type
with fields of the right and the wrong types, boundary values, odd text, unknown and
missing fields, plus text that is not a JSON object, deep nesting and oversize frames.
Each is sent by the role that may send it (host, moderator or viewer).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from core.roles import Role
from live.limits import RateLimits
from live.protocol import ID, INT, MAX_MESSAGE_BYTES, REQUESTS, S
from tests.hostile import NOT_JSON, mutated, nested
from tests.live.conftest import Client, LiveServer, seed_show
from tests.state_digest import changes, digest
from web.parts import parts

EXAMPLES = 70
SETTLE_S = 0.3  # reactions are summed and published every 0.25 s
ERROR_KEYS = {"type", "ref", "code", "message", "fields"}


def _valid(kind: str) -> dict[str, Any]:
    sample = {S: "x", ID: "x", INT: 1, "list": ["a", "b"], "bool": True}
    fields = {name: sample[spec] for name, (spec, _) in REQUESTS[kind].fields.items()}
    return {"type": kind, "ref": "f", **fields}


requests = st.sampled_from(sorted(REQUESTS)).flatmap(lambda kind: mutated(_valid(kind)))
frames = st.one_of(
    requests.map(json.dumps),
    requests.map(json.dumps),
    requests.map(json.dumps),
    st.sampled_from(NOT_JSON).map(lambda raw: raw.decode("utf-8", "replace")),
    st.just(json.dumps({"type": "chat", "ref": "f", "text": "x" * MAX_MESSAGE_BYTES})),
)


def _sender(frame: str) -> Role:
    try:
        kind = json.loads(frame).get("type")
    except (ValueError, AttributeError, RecursionError):
        return Role.VIEWER
    spec = REQUESTS.get(kind) if isinstance(kind, str) else None
    return min(spec.roles) if spec else Role.VIEWER


async def _send(live: LiveServer, clients: dict[Role, Client], frame: str) -> list[str]:
    resources = parts(live.app).resources
    client = clients[_sender(frame)]
    before = await digest(resources.engine, resources.redis)
    client.seen.clear()
    await client.ws.send(frame)
    pong = await client.request("ping")  # replies come in order: the frame's is before it
    if pong["type"] != "ok":
        return [f"ping after {frame[:200]!r} -> {pong}"]
    replies = [m for m in client.seen if m["type"] in ("ok", "error")]
    problems = []
    for reply in replies:
        if reply["type"] == "error" and (
            set(reply) - {"extra"} != ERROR_KEYS or reply["code"] == "internal_error"
        ):
            problems.append(f"{frame[:200]!r} -> {reply}")
    if any(r["type"] == "ok" for r in replies) or not replies:  # (react: no reply if taken)
        await asyncio.sleep(SETTLE_S)
        return problems
    changed = changes(before, await digest(resources.engine, resources.redis))
    if changed:
        problems.append(f"refused but changed {changed}: {frame[:200]!r} -> {replies}")
    return problems


def _fuzz(loop: asyncio.AbstractEventLoop, live: LiveServer, clients: dict[Role, Client]) -> None:
    """Runs in a worker thread: hypothesis drives, the test's loop serves each frame."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # (no shrinking: the time stays bounded)
        suppress_health_check=list(HealthCheck),
    )
    @given(frame=frames)
    @example(frame='{"type":"chat","ref":"f","text":' + nested(2000) + "}")
    @example(frame=nested(2040))
    @example(frame='{"type":"vote","ref":"f","poll_id":"p","option":NaN}')
    @example(frame='{"type":"mute","ref":"f","user_id":"u","seconds":' + "9" * 40 + "}")
    def check(frame: str) -> None:
        future = asyncio.run_coroutine_threadsafe(_send(live, clients, frame), loop)
        problems = future.result(timeout=30)
        assert problems == [], problems

    check()


async def test_hostile_frames(live: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    seeded = await seed_show(live.app, products=2, stock=3)
    parts(live.app).live.rate_limits = RateLimits({})  # (the fuzz is not about limits)
    show = seeded.show_id
    clients = {
        role: await Client.open(live.url, show, live.token(role, role.value, show))
        for role in (Role.HOST, Role.MODERATOR, Role.VIEWER)
    }
    for client in clients.values():
        await client.expect("snapshot")
    try:
        await asyncio.to_thread(_fuzz, asyncio.get_running_loop(), live, clients)
    finally:
        for client in clients.values():
            await client.close()
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert logged == [], [f"{r.name}: {r.getMessage()}" for r in logged]
