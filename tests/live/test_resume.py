"""Exactly-once resume across a killed process.

Two real server processes share one Redis and one database. Viewers watch on process A
while posters run a chat storm (with reactions between the chats) through process B; A is
killed with SIGKILL mid-storm and every viewer resumes on B with the id it kept the way
the pages keep ``lastId`` (the id of the last event that arrived). At the end each
viewer's chat ids must be exactly the show stream's public chat ids after its snapshot:
0 gaps, 0 duplicates, in id order; and every event id it got must only grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from starlette.applications import Starlette
from websockets.exceptions import ConnectionClosed

from core.roles import Role
from live.event_log import id_tuple, key
from tests.live.conftest import Client, events_of, seed_show
from web.parts import parts

VIEWERS = 150
POSTERS = 30
REACTORS = 5
STORM_S = 6.0
KILL_AT_S = 2.5
BURST_S = 1.0
CATCH_UP_S = 20.0


@dataclass
class Viewer:
    """What one viewer got, over both of its sockets."""

    token: str
    since: str | None = None  # its first snapshot's last_id
    last_id: str | None = None  # as the pages keep lastId
    ids: list[str] = field(default_factory=list)  # every event id, in arrival order
    chats: list[str] = field(default_factory=list)
    snapshots: int = 0
    resumed: bool = False

    def take(self, raw: str | bytes) -> None:
        message: dict[str, Any] = json.loads(raw)
        if message["type"] == "snapshot":
            self.snapshots += 1
            self.since = self.since or str(message["last_id"])
        for event in events_of([message]):
            if "id" in event:
                self.last_id = str(event["id"])
                self.ids.append(self.last_id)
                if event["type"] == "chat":
                    self.chats.append(self.last_id)


async def _read(client: Client, viewer: Viewer) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in client.ws:
            viewer.take(raw)


async def _watch(viewer: Viewer, show_id: str, one: str, two: str, ready: asyncio.Event) -> None:
    """Watch on ``one`` until it dies, then resume on ``two`` for good."""
    first = await Client.open(one, show_id, viewer.token)
    viewer.take(await first.ws.recv())  # hello
    viewer.take(await first.ws.recv())  # snapshot
    ready.set()
    await _read(first, viewer)
    back = await Client.open(two, show_id, viewer.token, last_id=viewer.last_id)
    viewer.resumed = True
    try:
        await _read(back, viewer)
    finally:
        await back.close()


@dataclass(frozen=True)
class Storm:
    """The storm's clock: chat at the refill rate, a burst from the kill on, then the end."""

    kill_at: float
    end_at: float

    @staticmethod
    def starting_now() -> Storm:
        now = time.monotonic()
        return Storm(now + KILL_AT_S, now + STORM_S)

    def pause_s(self) -> float:
        now = time.monotonic()
        return 0.05 if self.kill_at <= now < self.kill_at + BURST_S else 1.0


async def _post(client: Client, n: int, storm: Storm) -> None:
    count = 0
    while time.monotonic() < storm.end_at:
        await client.request("chat", text=f"p{n}-{count}")  # rate_limited ones are refused
        count += 1
        await asyncio.sleep(storm.pause_s())


async def _react(client: Client, storm: Storm) -> None:
    while time.monotonic() < storm.end_at:
        await client.ws.send(json.dumps({"type": "react", "emoji": "heart"}))
        await asyncio.sleep(0.1)


async def _public_chats(redis: aioredis.Redis, show_id: str) -> list[str]:
    rows: Any = await redis.xrange(key(show_id, "stream"), "-", "+")
    return [str(i) for i, f in rows if not f.get("to") and json.loads(f["e"])["type"] == "chat"]


def _faults(viewer: Viewer, chats: list[str]) -> list[str]:
    assert viewer.since is not None
    expected = [i for i in chats if id_tuple(i) > id_tuple(viewer.since)]
    got, faults = viewer.chats, []
    if len(got) != len(set(got)):
        faults.append(f"{len(got) - len(set(got))} duplicates")
    if set(expected) - set(got):
        faults.append(f"{len(set(expected) - set(got))} missing")
    positions = [id_tuple(i) for i in viewer.ids]
    if positions != sorted(positions):
        faults.append("ids out of order")
    if not viewer.resumed or viewer.snapshots != 1:
        faults.append(f"resumed {viewer.resumed}, {viewer.snapshots} snapshots")
    if not faults and got != expected:
        faults.append("other chats than the stream's")
    return faults


async def _caught_up(viewers: list[Viewer], last_chat: str) -> None:
    deadline = time.monotonic() + CATCH_UP_S
    while time.monotonic() < deadline:
        if all(v.chats and v.chats[-1] == last_chat for v in viewers):
            return
        await asyncio.sleep(0.1)


async def test_sigkilled_process_viewers_resume_exactly_once(
    app: Starlette,
    redis_client: aioredis.Redis,
    two_server_processes: list[tuple[int, int]],
) -> None:
    (port_a, pid_a), (port_b, _) = two_server_processes
    one, two = f"ws://127.0.0.1:{port_a}", f"ws://127.0.0.1:{port_b}"
    seeded = await seed_show(app)
    tokens = parts(app).tokens
    viewers = [Viewer(tokens.issue(Role.VIEWER, name=f"V{n}")) for n in range(VIEWERS)]
    posters = [
        await Client.open(two, seeded.show_id, tokens.issue(Role.VIEWER, name=f"P{n}"))
        for n in range(POSTERS)
    ]
    readies = [asyncio.Event() for _ in viewers]
    watching = [
        asyncio.create_task(_watch(v, seeded.show_id, one, two, ready))
        for v, ready in zip(viewers, readies, strict=True)
    ]
    try:
        async with asyncio.timeout(55):
            await asyncio.gather(*(ready.wait() for ready in readies))
            storm = Storm.starting_now()
            storming = [asyncio.create_task(_post(p, n, storm)) for n, p in enumerate(posters)]
            storming += [asyncio.create_task(_react(p, storm)) for p in posters[:REACTORS]]
            await asyncio.sleep(KILL_AT_S)
            os.kill(pid_a, signal.SIGKILL)
            await asyncio.gather(*storming)
            chats = await _public_chats(redis_client, seeded.show_id)
            await _caught_up(viewers, chats[-1])
        assert len(chats) >= 50, "the storm was no storm"
        faults = {n: f for n, v in enumerate(viewers) if (f := _faults(v, chats))}
        assert not faults, f"{len(faults)} of {VIEWERS} viewers: {dict(list(faults.items())[:5])}"
    finally:
        for task in watching:
            task.cancel()
        await asyncio.gather(*watching, return_exceptions=True)
        for poster in posters:
            await poster.close()
