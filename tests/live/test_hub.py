"""Fan-out: resume by id with no gap and no duplicate (also while the stream reader lags),
events in id order, the late joiner's snapshot, and a slow consumer that is closed (4008)
without stalling the others."""

from __future__ import annotations

import asyncio
import time

import pytest
from websockets.exceptions import ConnectionClosed

from core.roles import Role
from live.event_log import Entry, EventLog, id_tuple
from live.hub import ShowHub
from live.limits import RateLimits
from live.outbox import Limits
from live.protocol import Delivery
from tests.live.conftest import Client, LiveServer, events_of, seed_show
from web.parts import parts


async def _chats_until(client: Client, text: str) -> list[dict[str, object]]:
    await client.expect("chat", text=text)
    return [e for e in events_of(client.seen) if e["type"] == "chat"]


async def test_resume_by_id_has_no_gap_and_no_duplicate(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    parts(live.app).live.rate_limits = RateLimits({})
    poster = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Poster"))
    reader = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Reader"))
    await reader.expect("snapshot")
    for n in range(5):
        await poster.request("chat", text=f"c{n}")
    await reader.expect("chat", text="c4")
    got = [e for e in events_of(reader.log) if e["type"] == "chat"]
    last_id = str(got[-1]["id"])
    await reader.close()
    for n in range(5, 12):
        await poster.request("chat", text=f"c{n}")
    back = await Client.open(
        live.url, seeded.show_id, live.token(Role.VIEWER, "Reader"), last_id=last_id
    )
    await back.expect("chat", text="c11")
    assert all(m["type"] != "snapshot" for m in back.log)
    again = [e for e in events_of(back.log) if e["type"] == "chat"]
    assert [e["text"] for e in got + again] == [f"c{n}" for n in range(12)]
    ids = [id_tuple(str(e["id"])) for e in got + again]
    assert ids == sorted(set(ids))
    await poster.request("chat", text="live tail")
    await back.expect("chat", text="live tail")
    for client in (poster, back):
        await client.close()


class StalledReader:
    """Holds a hub's stream reader before its next read until ``release``; the real read
    then runs: a reader that lags behind what joining sockets read themselves."""

    def __init__(self, hub: ShowHub) -> None:
        self.gate = asyncio.Event()
        read = hub.event_log.read

        async def held_read(last_id: str, block_ms: int, count: int = 1000) -> list[Entry]:
            await self.gate.wait()
            return await read(last_id, block_ms, count)

        hub.event_log.read = held_read  # type: ignore[method-assign]

    def release(self) -> None:
        self.gate.set()


async def _stalled(
    live: LiveServer, show_id: str, watcher: Client
) -> tuple[EventLog, StalledReader]:
    """Stall the show's reader: once ``watcher`` has got one more chat, it waits at the gate."""
    stall = StalledReader(parts(live.app).live.rooms[show_id].hub)
    stream = EventLog(parts(live.app).resources.redis, show_id)
    await stream.publish("chat", {"text": "stall", "name": "bot"})
    await watcher.expect("chat", text="stall")
    return stream, stall


def _ids(client: Client, kind: str | None = None) -> list[str]:
    return [str(e["id"]) for e in events_of(client.log) if "id" in e and kind in (None, e["type"])]


async def test_resume_while_the_reader_lags_sends_each_event_once(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    watcher = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "W"))
    await watcher.expect("snapshot")
    stream, stall = await _stalled(live, seeded.show_id, watcher)
    last_id = _ids(watcher, "chat")[-1]
    c1 = await stream.publish("chat", {"text": "c1", "name": "bot"})
    c2 = await stream.publish("chat", {"text": "c2", "name": "bot"})
    back = await Client.open(
        live.url, seeded.show_id, live.token(Role.VIEWER, "R"), last_id=last_id
    )
    await back.expect("chat", text="c2")  # caught up by id, past what the reader has read
    c3 = await stream.publish("chat", {"text": "c3", "name": "bot"})
    stall.release()  # the reader's next read holds c1, c2 and c3
    await back.expect("chat", text="c3")
    await watcher.expect("chat", text="c3")
    assert _ids(back, "chat") == [c1, c2, c3]
    for client in (watcher, back):
        await client.close()


async def test_a_socket_gets_events_in_id_order(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    watcher = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "W"))
    await watcher.expect("snapshot")
    stream, stall = await _stalled(live, seeded.show_id, watcher)
    before = len(_ids(watcher))
    c1 = await stream.publish("chat", {"text": "c1", "name": "bot"})
    s2 = await stream.publish("reactions", {"counts": {"+1": 1}}, Delivery.STATE, key_="reactions")
    c3 = await stream.publish("chat", {"text": "c3", "name": "bot"})
    c4 = await stream.publish("chat", {"text": "c4", "name": "bot"})
    stall.release()  # one read: chat, state, chat, chat
    await watcher.expect("chat", text="c4")
    await watcher.expect("reactions")
    assert _ids(watcher)[before:] == [c1, s2, c3, c4]
    await watcher.close()


async def test_stale_or_foreign_last_id_gets_a_snapshot(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    client = await Client.open(
        live.url, seeded.show_id, live.token(Role.VIEWER, "V"), last_id="99999999999999-0"
    )
    snap = await client.expect("snapshot")
    assert snap["resync"] is True
    await client.close()


async def test_late_joiner_snapshot(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    host = await Client.open(live.url, seeded.show_id, live.token(Role.HOST, "H", seeded.show_id))
    mod = await Client.open(
        live.url, seeded.show_id, live.token(Role.MODERATOR, "M", seeded.show_id)
    )
    vera = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    await host.request("pin", product_id=seeded.product_ids[1])
    poll = await host.request("open_poll", question="Size?", options=["S", "M"])
    asked = await vera.request("ask", text="Wool?")
    await mod.request("approve", question_id=asked["question_id"])  # (others see it now)
    kept = await vera.request("chat", text="kept")
    dropped = await vera.request("chat", text="deleted")
    await mod.request("delete_chat", message_id=dropped["message_id"])
    await vera.expect("chat_deleted")  # the hub has read every change before the late joiner
    late = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Late"))
    snap = await late.expect("snapshot")
    assert [c["product_id"] for c in snap["cards"]] == [seeded.product_ids[1]]
    assert snap["cards"][0]["available"] == 5
    assert snap["poll"]["poll_id"] == poll["poll_id"] and snap["poll"]["tally"] == {}
    assert [q["text"] for q in snap["questions"]] == ["Wool?"]
    assert [(c["id"], c["text"]) for c in snap["chat"]] == [(kept["message_id"], "kept")]
    assert id_tuple(snap["last_id"]) >= id_tuple(kept["message_id"])
    for client in (host, mod, vera, late):
        await client.close()


async def test_slow_consumer_is_closed_and_does_not_stall_others(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    parts(live.app).live.limits = Limits(
        stream_frames=64, personal_frames=64, state_keys=64, stall_s=1.0
    )
    slow = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Slow"))
    await slow.expect("snapshot")
    fast = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Fast"))
    await fast.expect("snapshot")
    slow.ws.transport.pause_reading()  # a client that stops reading
    stream = EventLog(parts(live.app).resources.redis, seeded.show_id)
    body = "x" * 30_000
    started = time.monotonic()
    for n in range(200):
        await stream.publish("chat", {"text": f"{n}:{body}", "name": "bot"}, Delivery.FEED)
    received = 0
    while received < 200:
        message = await fast.next()
        received += sum(1 for e in events_of([message]) if e["type"] == "chat")
    fast.seen.clear()
    assert received == 200
    assert time.monotonic() - started < 10
    await asyncio.sleep(1.5)
    slow.ws.transport.resume_reading()
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(1000):
            await slow.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
    assert (await fast.request("ping"))["type"] == "ok"
    await fast.close()


async def test_uvicorn_sockets_take_the_direct_path(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    client = await Client.open(live.url, seeded.show_id)
    await client.expect("snapshot")
    room = parts(live.app).live.rooms[seeded.show_id]
    assert [type(m.outlet.sink).__name__ for m in room.hub.members] == ["DirectSink"]
    await client.close()


async def test_idle_room_is_collected_and_comes_back(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    service = parts(live.app).live
    service.idle_room_s = 0.2
    client = await Client.open(live.url, seeded.show_id)
    await client.expect("snapshot")
    assert seeded.show_id in service.rooms
    await client.close()
    for _ in range(50):
        if seeded.show_id not in service.rooms:
            break
        await asyncio.sleep(0.05)
    assert seeded.show_id not in service.rooms
    again = await Client.open(live.url, seeded.show_id)
    await again.expect("snapshot")
    assert seeded.show_id in service.rooms
    await again.close()


async def test_a_snapshot_holds_no_chat_after_its_id(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chat that lands between the snapshot's id and its read of recent chat is sent after
    # the snapshot (it is after the id): in the snapshot too, it reached the client twice.
    seeded = await seed_show(live.app)
    room = await parts(live.app).live.room(seeded.show_id)
    log = room.event_log
    await log.publish("chat", {"text": "before", "name": "bot"})
    read_id = log.last_id

    async def id_then_a_chat() -> str:
        since = await read_id()
        await log.publish("chat", {"text": "after", "name": "bot"})
        return since

    monkeypatch.setattr(log, "last_id", id_then_a_chat)
    since, _, recent, _, _ = await room._build_snapshot()
    assert [e.id for e in recent] == [since]
    assert [e.id for e in await log.after(since)] != []  # "after" follows in the catch-up


async def test_a_ban_that_comes_during_the_catch_up_closes_the_socket(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Entries the reader fans out while a socket catches up are held and sent after it; a
    # ban among them was sent but did not close the socket as a ban does.
    seeded = await seed_show(live.app)
    hub = (await parts(live.app).live.room(seeded.show_id)).hub
    token = live.token(Role.VIEWER, "Banned")
    user_id = parts(live.app).tokens.verify(token).user_id
    read_after = hub.event_log.after

    async def after_then_a_ban(since: str, count: int = 10_000) -> list[Entry]:
        missed = await read_after(since, count)
        await hub.event_log.publish(
            "moderation", {"action": "ban"}, Delivery.PERSONAL, key_="kick", to=user_id
        )
        await asyncio.sleep(0.5)  # the reader fans it out meanwhile: held for this socket
        return missed

    monkeypatch.setattr(hub.event_log, "after", after_then_a_ban)
    client = await Client.open(live.url, seeded.show_id, token)
    try:
        await client.expect("moderation", action="ban")
        assert await client.close_code() == 4403, "a banned viewer's socket stayed open"
    finally:
        await client.close()
