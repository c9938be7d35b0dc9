"""Resuming with a hostile or unknown ``last_id``: a snapshot, never a dropped socket.

Through a real server: each malformed id gets hello, then a snapshot that says it is a
resync, and the socket stays open (a request is answered); nothing is logged as an error.
An id inside the stream's range that the stream never held gets a snapshot too; an id it
holds resumes.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import pytest
from websockets.asyncio.client import connect

from live.event_log import EventLog, id_tuple
from live.protocol import Delivery
from tests.live.conftest import WAIT_S, Client, LiveServer, events_of, seed_show
from web.parts import parts


async def _open(live: LiveServer, show_id: str, last_id: str) -> Client:
    query = urllib.parse.urlencode({"last_id": last_id})  # anonymous: watching needs no token
    ws = await asyncio.wait_for(
        connect(f"{live.url}/live/{show_id}?{query}", open_timeout=WAIT_S), WAIT_S
    )
    return Client(ws)


async def _three_chats(live: LiveServer, show_id: str) -> list[str]:
    stream = EventLog(parts(live.app).resources.redis, show_id)
    ids = []
    for n in range(3):
        ids.append(await stream.publish("chat", {"text": f"c{n}", "name": "bot"}, Delivery.FEED))
        await asyncio.sleep(0.005)  # each in a millisecond of its own
    return ids


def _hostile(real: str) -> list[str]:
    ms, _, seq = real.partition("-")
    wide = "".join(chr(ord(d) + 0xFEE0) for d in ms)
    return [
        f"{wide}-{seq}",
        f"{ms[0]}_{ms[1:]}-{seq}",
        f"{real} ",
        f"{ms}-",
        f"{ms}-{seq}-1",
        "99999999999999999999999-0",
        f"{2**64}-0",
        f"{ms}-{2**64}",
        "garbage",
        "",
    ]


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]


async def test_malformed_last_id_gets_a_snapshot_and_keeps_the_socket(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed_show(live.app)
    ids = await _three_chats(live, seeded.show_id)
    for last_id in _hostile(ids[1]):
        client = await _open(live, seeded.show_id, last_id)
        assert (await client.next())["type"] == "hello", last_id
        snapshot = await client.next()
        assert snapshot["type"] == "snapshot", (last_id, snapshot)
        assert snapshot["resync"] is True, last_id
        assert snapshot["last_id"] == ids[-1]
        reply = await client.request("ping")  # (anonymous: refused, but answered)
        assert reply["code"] == "auth_required", last_id
        await client.close()
    _no_errors_logged(caplog)


async def test_an_id_the_stream_never_held_gets_a_snapshot(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = await seed_show(live.app)
    ids = await _three_chats(live, seeded.show_id)
    ms, seq = id_tuple(ids[0])
    unknown = f"{ms}-{seq + 999}"  # inside the range, after c0 and before c1, never issued
    assert id_tuple(ids[0]) < id_tuple(unknown) < id_tuple(ids[1])
    client = await _open(live, seeded.show_id, unknown)
    await client.expect("hello")
    snapshot = await client.expect("snapshot")
    assert snapshot["resync"] is True and snapshot["last_id"] == ids[-1]
    assert [c["text"] for c in snapshot["chat"]] == ["c0", "c1", "c2"]
    await client.close()
    _no_errors_logged(caplog)


async def test_an_id_the_stream_holds_resumes(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    ids = await _three_chats(live, seeded.show_id)
    client = await _open(live, seeded.show_id, ids[0])
    await client.expect("hello")
    await client.expect("chat", text="c2")
    assert all(m["type"] != "snapshot" for m in client.log)
    got = [e["id"] for e in events_of(client.log) if e["type"] == "chat"]
    assert got == ids[1:]
    await client.close()
