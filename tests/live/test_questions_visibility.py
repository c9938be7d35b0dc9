"""Who sees a question (asked, approved, answered, dismissed; LIVESHOP_QUESTIONS_PUBLIC),
live and in snapshots, and the moderators' lists with unmute / unban / unshadow_ban."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from config import Settings
from core.roles import Role
from live.hub import may_see, staff_and
from tests.live.conftest import Client, LiveServer, events_of, seed_show, start_server
from web.app import create_app


def test_who_may_see_an_entry() -> None:
    pending = staff_and("v_asker")
    assert may_see(pending, "v_asker", Role.VIEWER)
    assert may_see(pending, "m_1", Role.MODERATOR) and may_see(pending, "h_1", Role.HOST)
    assert not may_see(pending, "v_other", Role.VIEWER)
    assert not may_see(pending, "", None)  # (an anonymous watcher)
    assert not may_see(staff_and(), "v_asker", Role.VIEWER) and may_see(
        staff_and(), "m", Role.MODERATOR
    )
    assert may_see("", "", None) and may_see("v_1", "v_1", Role.VIEWER)
    assert not may_see("v_1", "v_2", Role.VIEWER) and not may_see("v_1", "m", Role.MODERATOR)


async def _join(live: LiveServer, show_id: str, role: Role, name: str) -> Client:
    client = await Client.open(live.url, show_id, live.token(role, name, show_id))
    await client.expect("snapshot")
    return client


def _mentions(client: Client, question_id: str) -> list[dict[str, Any]]:
    """Every question event (and snapshot entry) this client got about ``question_id``."""
    out = []
    for event in events_of(client.log):
        if event["type"] == "snapshot":
            out += [q for q in event["questions"] if q["id"] == question_id]
        elif event.get("question", {}).get("id") == question_id:
            out.append(event)
    return out


async def _settle(*clients: Client) -> None:
    """Every event published so far has reached these clients (a ping goes after them)."""
    for client in clients:
        await client.request("ping")


@pytest.fixture
async def public_live(settings: Settings, redis_client: Any) -> AsyncIterator[LiveServer]:
    app = create_app(settings.model_copy(update={"questions_public": True}))
    server, task, port = await start_server(app)
    try:
        yield LiveServer(app, f"ws://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_an_unapproved_question_reaches_only_the_staff_and_its_asker(
    live: LiveServer,
) -> None:
    seeded = await seed_show(live.app, products=1)
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    mod = await _join(live, seeded.show_id, Role.MODERATOR, "Mo")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    walt = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    anon = await Client.open(live.url, seeded.show_id)
    await anon.expect("snapshot")
    asked = await vera.request("ask", text="Is it wool?")
    assert asked["status"] == "asked"
    qid = asked["question_id"]
    for staff in (host, mod, vera):
        assert (await staff.expect("question"))["question"]["id"] == qid
    await mod.request("pin_question", question_id=qid)  # (still waiting: staff and asker)
    assert (await vera.expect("question_updated"))["question"]["pinned"] is True
    await _settle(walt, anon)
    assert _mentions(walt, qid) == [] and _mentions(anon, qid) == []
    # nor in the snapshot of a viewer who joins now; the asker's and the staff's have it
    late = await _join(live, seeded.show_id, Role.VIEWER, "Late")
    assert _mentions(late, qid) == []
    again = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    # (another Vera: a token of its own is another viewer)
    assert [q["id"] for q in (await again.expect("snapshot"))["questions"]] == []
    for staff_role, name in ((Role.MODERATOR, "Mo2"), (Role.HOST, "Hana2")):
        staff = await _join(live, seeded.show_id, staff_role, name)
        assert [q["status"] for q in _mentions(staff, qid)] == ["asked"]
        await staff.close()
    # other viewers may not upvote it (for them it is not there)
    assert (await walt.request("upvote", question_id=qid))["code"] == "question_not_found"
    # approved: everyone gets it, as an update they add
    await mod.request("approve", question_id=qid)
    for client in (walt, anon, late):
        update = await client.expect("question_updated")
        assert update["question"]["id"] == qid and update["question"]["status"] == "approved"
    assert (await walt.request("upvote", question_id=qid))["votes"] == 1
    for client in (host, mod, vera, walt, anon, late, again):
        await client.close()


async def test_the_asker_gets_their_own_pending_question_in_the_snapshot(
    live: LiveServer,
) -> None:
    seeded = await seed_show(live.app, products=1)
    token = live.token(Role.VIEWER, "Vera")
    vera = await Client.open(live.url, seeded.show_id, token)
    await vera.expect("snapshot")
    qid = (await vera.request("ask", text="Mine, waiting"))["question_id"]
    await vera.expect("question")
    await vera.close()
    reloaded = await Client.open(live.url, seeded.show_id, token)  # (a reload: no last_id)
    snap = await reloaded.expect("snapshot")
    assert [(q["id"], q["status"]) for q in snap["questions"]] == [(qid, "asked")]
    assert snap["questions_public"] is False
    await reloaded.close()


async def test_answered_questions_stay_after_a_reload_and_dismissed_ones_go(
    live: LiveServer,
) -> None:
    seeded = await seed_show(live.app, products=1)
    mod = await _join(live, seeded.show_id, Role.MODERATOR, "Mo")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    walt = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    answered = (await vera.request("ask", text="Does it shrink?"))["question_id"]
    approved = (await vera.request("ask", text="Colours?"))["question_id"]
    hidden = (await vera.request("ask", text="Never approved"))["question_id"]
    # answered straight from the queue (asked -> answered): everyone gets the answer
    await mod.request("answer", question_id=answered, text="No.")
    answer = await walt.expect("answer")
    assert answer["question"]["id"] == answered and answer["question"]["answer"] == "No."
    await mod.request("approve", question_id=approved)
    await walt.expect("question_updated", wait_s=5)
    await mod.request("dismiss", question_id=approved)  # walt saw it: walt is told
    gone = await walt.expect("question_updated")
    assert gone["question"]["id"] == approved and gone["question"]["status"] == "dismissed"
    await mod.request("dismiss", question_id=hidden)  # walt never saw it: nor its dismissal
    assert (await vera.expect("question_updated", wait_s=5))["question"]["id"] in (
        approved,
        hidden,
    )
    await _settle(walt)
    assert _mentions(walt, hidden) == []
    late = await _join(live, seeded.show_id, Role.VIEWER, "Late")
    snap_questions = next(e for e in events_of(late.log) if e["type"] == "snapshot")["questions"]
    assert [(q["id"], q["status"], q["answer"]) for q in snap_questions] == [
        (answered, "answered", "No.")
    ]
    for client in (mod, vera, walt, late):
        await client.close()


async def test_with_questions_public_everyone_sees_a_question_at_once(
    public_live: LiveServer,
) -> None:
    live = public_live
    seeded = await seed_show(live.app, products=1)
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    walt = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    qid = (await vera.request("ask", text="Public at once?"))["question_id"]
    got = await walt.expect("question")
    assert got["question"]["id"] == qid and got["question"]["status"] == "asked"
    assert (await walt.request("upvote", question_id=qid))["votes"] == 1
    late = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Late"))
    snap = await late.expect("snapshot")
    assert [q["id"] for q in snap["questions"]] == [qid] and snap["questions_public"] is True
    for client in (vera, walt, late):
        await client.close()


async def test_moderation_state_lists_and_undoes_mutes_bans_and_shadow_bans(
    live: LiveServer,
) -> None:
    seeded = await seed_show(live.app, products=1)
    mod = await _join(live, seeded.show_id, Role.MODERATOR, "Mo")
    token = live.token(Role.VIEWER, "Alice")
    alice = await Client.open(live.url, seeded.show_id, token)
    await alice.expect("snapshot")
    chat = await alice.request("chat", text="hi")
    uid = (await mod.expect("chat", text="hi"))["user_id"]
    empty = await mod.request("moderation_state")
    assert {k: empty[k] for k in ("muted", "banned", "shadow_banned", "slow_mode")} == {
        "muted": [],
        "banned": [],
        "shadow_banned": [],
        "slow_mode": [],
    }
    await mod.request("blocked_words", words=["Spam", "scam"])
    await mod.request("mute", user_id=uid, seconds=300)
    await mod.request("slow_mode", user_id=uid, seconds=30)
    await mod.request("shadow_ban", user_id=uid)
    state = await mod.request("moderation_state")
    assert state["blocked_words"] == ["scam", "spam"]
    [muted] = state["muted"]
    assert (muted["user_id"], muted["name"]) == (uid, "Alice")
    assert 290_000 < muted["until_ms"] - int(time.time() * 1000) <= 300_000
    assert state["slow_mode"] == [{"user_id": uid, "name": "Alice", "seconds": 30}]
    assert state["shadow_banned"] == [{"user_id": uid, "name": "Alice"}]
    assert (await alice.request("chat", text="muted?"))["code"] == "muted"
    assert (await mod.request("unmute", user_id=uid))["was_muted"] is True
    assert (await alice.expect("moderation", action="unmute"))["action"] == "unmute"
    assert (await mod.request("unmute", user_id=uid))["was_muted"] is False
    assert (await alice.request("chat", text="back"))["type"] == "ok"
    assert (await mod.request("unshadow_ban", user_id=uid))["was_shadow_banned"] is True
    # banned: closed, refused at the door; unbanned: let in again, and a socket resuming
    # from before the ban is not closed for it
    await mod.request("ban", user_id=uid)
    assert await alice.close_code() == 4403
    assert (await mod.request("moderation_state"))["banned"] == [{"user_id": uid, "name": "Alice"}]
    refused = await Client.open(live.url, seeded.show_id, token)
    assert (await refused.expect("error"))["code"] == "banned"
    assert (await mod.request("unban", user_id=uid))["was_banned"] is True
    state = await mod.request("moderation_state")
    assert state["muted"] == state["banned"] == state["shadow_banned"] == []
    resumed = await Client.open(live.url, seeded.show_id, token, last_id=chat["message_id"])
    await mod.request("slow_mode", user_id=uid, seconds=0)
    assert (await resumed.request("chat", text="I am back"))["type"] == "ok"
    assert await resumed.close_code(wait_s=0.5) is None
    fresh = await Client.open(live.url, seeded.show_id, token)
    await fresh.expect("snapshot")
    for client in (mod, resumed, fresh):
        await client.close()


async def test_only_moderators_read_or_undo_moderation(live: LiveServer) -> None:
    seeded = await seed_show(live.app, products=1)
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    for client in (host, vera):
        for kind, fields in (
            ("moderation_state", {}),
            ("unmute", {"user_id": "v_x"}),
            ("unban", {"user_id": "v_x"}),
            ("unshadow_ban", {"user_id": "v_x"}),
        ):
            assert (await client.request(kind, **fields))["code"] == "forbidden_role"
    mod = await _join(live, seeded.show_id, Role.MODERATOR, "Mo")
    refused = await mod.request("unban", user_id="x" * 65)
    assert (refused["code"], list(refused["fields"])) == ("invalid_input", ["user_id"])
    for client in (host, vera, mod):
        await client.close()
