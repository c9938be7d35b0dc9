"""Every role's actions and refusals over real sockets, on both databases."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed

from core.roles import Role
from live.limits import RateLimits
from live.models import ModerationAction
from signaling import VideoHealth
from tests.live.conftest import Client, LiveServer, events_of, seed_show
from web.parts import parts


async def _join(live: LiveServer, show_id: str, role: Role, name: str) -> Client:
    client = await Client.open(live.url, show_id, live.token(role, name, show_id))
    await client.expect("snapshot")
    return client


async def test_join_gets_hello_and_snapshot(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    viewer = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    hello = await viewer.expect("hello")
    assert hello["role"] == "viewer"
    snap = await viewer.expect("snapshot")
    assert snap["cards"] == [] and snap["chat"] == [] and snap["poll"] is None
    assert snap["status"] == "live"
    assert isinstance(snap["clock_ms"], int)
    # the show clock's origin: now, less the show clock (ms since the epoch, this server's)
    assert abs(snap["clock0_ms"] + snap["clock_ms"] - time.time() * 1000) < 5_000
    await viewer.close()


async def test_refusals_at_the_door(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    other = await seed_show(live.app)
    cases = [
        (live.token(Role.HOST, "Hana", other.show_id), 4403, "forbidden_show"),
        ("forged.token.value", 4401, "auth_invalid"),
    ]
    for token, close_code, code in cases:
        client = await Client.open(live.url, seeded.show_id, token)
        error = await client.expect("error")
        assert error["code"] == code
        with pytest.raises(ConnectionClosed) as closed:
            await client.next()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == close_code
    missing = await Client.open(live.url, "shw_missing", live.token(Role.VIEWER, "V"))
    assert (await missing.expect("error"))["code"] == "show_not_found"


async def test_a_socket_ends_with_its_token(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    token = parts(live.app).tokens.issue(Role.VIEWER, name="Vera", ttl_s=2)
    client = await Client.open(live.url, seeded.show_id, token)
    await client.expect("hello")
    error = await client.expect("error", wait_s=5)
    assert error["code"] == "auth_expired"
    with pytest.raises(ConnectionClosed) as closed:
        await client.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_host_pins_cards_viewers_see_them(live: LiveServer) -> None:
    seeded = await seed_show(live.app, products=4, stock=5)
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    viewer = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    for product_id in seeded.product_ids[:3]:
        assert (await host.request("pin", product_id=product_id))["type"] == "ok"
    refused = await host.request("pin", product_id=seeded.product_ids[3])
    assert refused["code"] == "too_many_pinned"
    card = (await viewer.expect("card_pinned"))["card"]
    assert card["product_id"] == seeded.product_ids[0]
    assert card["name"] == "Product 0"
    assert card["image_url"] == "https://img.example/0.png"
    assert card["price"] == {"amount": 1000, "currency": "EUR", "exponent": 2}
    assert card["available"] == 5 and card["sold_out"] is False
    assert card["deal_price"] is None and card["ends_at"] is None
    # A viewer may not pin, a viewer may not moderate.
    assert (await viewer.request("pin", product_id=seeded.product_ids[3]))["code"] == (
        "forbidden_role"
    )
    assert (await viewer.request("ban", user_id="x"))["code"] == "forbidden_role"
    assert (await host.request("unpin", product_id=seeded.product_ids[0]))["type"] == "ok"
    gone = await viewer.expect("card_unpinned")
    assert gone["product_id"] == seeded.product_ids[0]
    late = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Late"))
    snap = await late.expect("snapshot")
    assert [c["product_id"] for c in snap["cards"]] == seeded.product_ids[1:3]
    for client in (host, viewer, late):
        await client.close()


async def test_anonymous_watches_but_may_not_post(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    anon = await Client.open(live.url, seeded.show_id)
    assert (await anon.expect("hello"))["role"] == "anonymous"
    await anon.expect("snapshot")
    assert (await anon.request("chat", text="hi"))["code"] == "auth_required"
    viewer = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    await viewer.request("chat", text="<b>hello</b>")
    chat = await anon.expect("chat")
    assert chat["text"] == "<b>hello</b>" and chat["name"] == "Vera"
    for client in (anon, viewer):
        await client.close()


async def test_moderation(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    parts(live.app).live.rate_limits = RateLimits({"chat": (10.0, 50)})
    mod = await _join(live, seeded.show_id, Role.MODERATOR, "Mo")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    walt = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    hello = await vera.request("chat", text="first")
    vera_uid = (await walt.expect("chat", text="first"))["user_id"]
    # delete a message
    assert (await mod.request("delete_chat", message_id=hello["message_id"]))["type"] == "ok"
    assert (await walt.expect("chat_deleted"))["message_id"] == hello["message_id"]
    # blocked words, before fan-out
    assert (await mod.request("blocked_words", words=["Spam"]))["words"] == ["spam"]
    assert (await vera.request("chat", text="buy SPAM now"))["code"] == "blocked_words"
    # slow mode for one viewer
    await mod.request("slow_mode", user_id=vera_uid, seconds=30)
    assert (await vera.request("chat", text="one"))["type"] == "ok"
    assert (await vera.request("chat", text="two"))["code"] == "slow_mode"
    await mod.request("slow_mode", user_id=vera_uid, seconds=0)
    # shadow ban: Vera sees her message, Walt does not
    await mod.request("shadow_ban", user_id=vera_uid)
    assert (await vera.request("chat", text="shadowed"))["type"] == "ok"
    await vera.expect("chat", text="shadowed")
    await walt.request("chat", text="after")
    await walt.expect("chat", text="after")
    assert all(e.get("text") != "shadowed" for e in events_of(walt.seen))
    # mute, then ban: the socket closes with 4403 and cannot come back
    await mod.request("mute", user_id=vera_uid, seconds=60)
    assert (await vera.request("chat", text="muted?"))["code"] == "muted"
    await mod.request("ban", user_id=vera_uid)
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(20):
            await vera.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    # canned replies
    canned = await mod.request("canned_add", text="Shipping is free!")
    assert (await mod.request("canned_list"))["canned"] == {
        canned["canned_id"]: "Shipping is free!"
    }
    await mod.request("canned_send", canned_id=canned["canned_id"])
    assert (await walt.expect("chat", text="Shipping is free!"))["role"] == "moderator"
    async with parts(live.app).resources.sessions() as session:
        actions = list(
            await session.scalars(
                select(ModerationAction.action).order_by(ModerationAction.created_at)
            )
        )
    assert sorted(actions) == sorted(
        [
            "delete_chat",
            "blocked_words",
            "slow_mode",
            "slow_mode",
            "shadow_ban",
            "mute",
            "ban",
            "canned_add",
            "canned_send",
        ]
    )
    for client in (mod, walt):
        await client.close()


async def test_banned_identity_is_refused(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    mod = await _join(live, seeded.show_id, Role.MODERATOR, "Mo")
    token = live.token(Role.VIEWER, "Vera")
    uid = parts(live.app).tokens.verify(token).user_id
    await mod.request("ban", user_id=uid)
    client = await Client.open(live.url, seeded.show_id, token)
    assert (await client.expect("error"))["code"] == "banned"
    await mod.close()


async def test_questions_queue_answer_and_timing(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    mod = await _join(live, seeded.show_id, Role.MODERATOR, "Mo")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    walt = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    q1 = (await vera.request("ask", text="Is it wool?"))["question_id"]
    asking = time.monotonic()
    q2 = (await vera.request("ask", text="Does it shrink?"))["question_id"]
    asked = time.monotonic()
    assert (await mod.expect("question"))["question"]["text"] == "Is it wool?"
    assert (await walt.request("upvote", question_id=q2))["code"] == "question_not_found"
    assert (await mod.request("approve", question_id=q2))["type"] == "ok"
    assert (await walt.expect("question_updated"))["question"]["status"] == "approved"
    assert (await walt.request("upvote", question_id=q2))["votes"] == 1
    assert (await walt.request("upvote", question_id=q2))["code"] == "already_voted"
    queue = (await host.request("queue"))["questions"]
    assert [q["id"] for q in queue] == [q2, q1]
    await asyncio.sleep(0.3)  # the answer comes at least this long after the question
    answering = time.monotonic()
    answered = await mod.request("answer", question_id=q2, text="No, it does not.")
    replied = time.monotonic()
    # asked somewhere in [asking, asked], answered somewhere in [answering, replied]
    # (with a millisecond for the stored timestamps and the two clocks):
    assert answering - asked - 0.001 <= answered["answer_s"] <= replied - asking + 0.001
    assert answering - asked >= 0.3
    answer = (await walt.expect("answer"))["question"]
    assert answer["id"] == q2 and answer["answer"] == "No, it does not."
    assert answer["answer_s"] == answered["answer_s"]
    assert answer["text"] == "Does it shrink?"
    assert (await mod.request("approve", question_id=q2))["code"] == "illegal_transition"
    assert (await mod.request("dismiss", question_id=q1))["type"] == "ok"
    assert (await host.request("queue"))["questions"] == []
    stats = await host.request("stats")
    # one answered question (q1 was dismissed): its time is the median and the longest
    times = stats["questions"]
    assert (times["answered"], times["waiting"], times["oldest_waiting_s"]) == (1, 0, None)
    assert times["median_answer_s"] == times["p90_answer_s"] == answered["answer_s"]
    assert times["max_answer_s"] == answered["answer_s"]
    assert times["human"] == {
        "answered": 1,
        "median_answer_s": answered["answer_s"],
        "p90_answer_s": answered["answer_s"],
    }
    assert times["automatic"] == {"answered": 0, "median_answer_s": None, "p90_answer_s": None}
    assert (await vera.request("approve", question_id=q1))["code"] == "forbidden_role"
    for client in (host, mod, vera, walt):
        await client.close()


async def test_polls_vote_once_with_live_tally(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    walt = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    poll_id = (await host.request("open_poll", question="Color?", options=["red", "blue"]))[
        "poll_id"
    ]
    assert (await walt.expect("poll_opened"))["poll"]["options"] == ["red", "blue"]
    assert (await vera.request("vote", poll_id=poll_id, option=1))["type"] == "ok"
    assert (await vera.request("vote", poll_id=poll_id, option=0))["code"] == "already_voted"
    assert (await walt.request("vote", poll_id=poll_id, option=1))["type"] == "ok"
    assert (await walt.request("vote", poll_id=poll_id, option=5))["code"] == "invalid_input"
    tally = await walt.expect("poll_tally", poll_id=poll_id, tally={"1": 2})
    assert tally["tally"] == {"1": 2}
    closed = await host.request("close_poll", poll_id=poll_id)
    assert closed["tally"] == {"1": 2}
    assert (await vera.request("vote", poll_id=poll_id, option=0))["code"] == "poll_closed"
    for client in (host, vera, walt):
        await client.close()


async def test_cart_and_buy_reply_to_that_viewer_only(live: LiveServer) -> None:
    """Cart and one-tap buy over the socket, through the real checkout service."""
    seeded = await seed_show(live.app, products=1, stock=3)
    variant = seeded.variant_ids[0]
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    mod = await _join(live, seeded.show_id, Role.MODERATOR, "Mo")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    walt = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    cart = (await vera.request("add_to_cart", variant_id=variant, quantity=1))["cart"]
    assert [(line["variant_id"], line["quantity"]) for line in cart["lines"]] == [(variant, 1)]
    assert cart["total"] == {"amount": 1000, "currency": "EUR"}
    bought = await vera.request(
        "buy_now",
        variant_id=variant,
        quantity=2,
        idempotency_key="k1",
        payment_method="pm_card_ok",
    )
    assert bought["order"]["status"] == "paid"
    assert bought["order"]["total"] == {"amount": 2000, "currency": "EUR"}
    again = await vera.request(
        "buy_now",
        variant_id=variant,
        quantity=2,
        idempotency_key="k1",
        payment_method="pm_card_ok",
    )
    assert again["order"]["order_id"] == bought["order"]["order_id"]
    order = await vera.expect("order")
    assert order["status"] == "confirmed" and order["idempotency_key"] == "k1"
    stock = await walt.expect("stock", variant_id=variant, available=0)
    assert stock["sold_out"] is True
    sold_out = await walt.request(
        "buy_now",
        variant_id=variant,
        quantity=1,
        idempotency_key="k2",
        payment_method="pm_card_ok",
    )
    assert sold_out["code"] == "sold_out"
    await walt.request("ping")
    assert all(e["type"] != "order" for e in events_of(walt.seen))
    assert (await walt.request("notify_me", variant_id=variant))["type"] == "ok"
    orders = await mod.request("viewer_orders", user_id=order["buyer_id"])
    assert [o["total"]["amount"] for o in orders["orders"]] == [2000]
    stats = await host.request("stats")
    assert stats["orders"] == 1 and stats["revenue_minor"] == 2000
    removed = await vera.request("remove_from_cart", variant_id=variant)
    assert removed["cart"]["lines"] == []
    back = await walt.expect("back_in_stock", variant_id=variant)
    assert back["available"] == 1
    deal = await host.request(
        "start_deal", variant_id=variant, price_minor=500, units=1, duration_s=60
    )
    assert deal["deal"]["price"] == {"amount": 500, "currency": "EUR"}
    started = await walt.expect("deal_started", variant_id=variant)
    assert started["deal_price_minor"] == 500
    card = (await host.request("pin", product_id=seeded.product_ids[0]))["card"]
    assert card["deal_price"] == {"amount": 500, "currency": "EUR"}
    assert card["ends_at"] == deal["deal"]["ends_at"]
    for client in (host, mod, vera, walt):
        await client.close()


async def test_reactions_are_aggregated_and_stats_count(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    for _ in range(12):
        await vera.ws.send('{"type":"react","emoji":"<3"}')
    await vera.request("tap", product_id=seeded.product_ids[0])
    total = 0
    while total < 12:
        total += (await host.expect("reactions"))["counts"]["<3"]
    assert total == 12
    reactions = [e for e in events_of(host.seen) if e["type"] == "reactions"]
    assert len(reactions) <= 2  # counts per tick, never one message per tap
    await asyncio.sleep(1.2)
    stats = await host.request("stats")
    # the host is no viewer: Vera is the one viewer there is and ever was
    assert stats["viewers_now"] == 1 and stats["viewers_peak"] == 1
    assert stats["taps"] == {seeded.product_ids[0]: 1}
    for client in (host, vera):
        await client.close()


async def test_viewers_peak_outlasts_a_viewer_who_left(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    walt = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    await host.expect("viewers", now=2, peak=2)
    await walt.close()
    await host.expect("viewers", now=1, peak=2)
    stats = await host.request("stats")
    assert (stats["viewers_now"], stats["viewers_peak"]) == (1, 2)
    for client in (host, vera):
        await client.close()


async def test_moderation_log_has_rows(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    await host.request("pin", product_id=seeded.product_ids[0])
    async with parts(live.app).resources.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(ModerationAction))
    assert count == 1
    await host.close()


async def test_video_state_is_announced_and_kept_for_late_joiners(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    viewer = await Client.open(live.url, seeded.show_id, None)
    first = await viewer.expect("snapshot")
    assert (first["stream"], first["status"]) == ("offline", "live")
    await parts(live.app).bus.video_state_changed(seeded.show_id, "reconnecting")
    assert (await viewer.expect("stream"))["state"] == "reconnecting"
    late = await Client.open(live.url, seeded.show_id, None)
    assert (await late.expect("snapshot"))["stream"] == "reconnecting"
    for client in (viewer, late):
        await client.close()


async def test_the_publishers_health_reaches_the_staff_only(live: LiveServer) -> None:
    """What the relay measures of an OBS host reaches the show's staff (event and
    snapshot) with advice, again only when it changed enough; viewers never see it."""
    seeded = await seed_show(live.app)
    access = parts(live.app).access
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    viewer = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    obs = "streamkey:k1"
    await access.video_health_reported(
        seeded.show_id, obs, VideoHealth("video/h264", 9.96, 1_500_000)
    )
    first = (await host.expect("video_health"))["health"]
    assert first == {
        "codec": "video/h264",
        "keyframe_interval_s": 10.0,
        "bitrate_bps": 1_500_000,
        "stream_key": True,
        "advice": "keyframe_interval_long",
    }
    # a small change is kept for snapshots but not announced; the fix is
    await access.video_health_reported(
        seeded.show_id, obs, VideoHealth("video/h264", 10.1, 1_600_000)
    )
    await access.video_health_reported(
        seeded.show_id, obs, VideoHealth("video/h264", 2.0, 1_600_000)
    )
    fixed = (await host.expect("video_health"))["health"]
    assert (fixed["keyframe_interval_s"], fixed["advice"]) == (2.0, None)
    assert not [e for e in events_of(host.log) if e["type"] == "video_health"][2:]
    late = await Client.open(
        live.url, seeded.show_id, live.token(Role.MODERATOR, "Mo", seeded.show_id)
    )
    assert (await late.expect("snapshot"))["video_health"]["keyframe_interval_s"] == 2.0
    # a browser host (its own token) is never told to change an interval it cannot set
    await access.video_health_reported(
        seeded.show_id, "host-1", VideoHealth("video/vp8", 8.0, 900_000)
    )
    browser = (await late.expect("video_health"))["health"]
    assert (browser["stream_key"], browser["advice"]) == (False, None)
    await parts(live.app).bus.video_state_changed(seeded.show_id, "paused")
    await viewer.expect("stream", state="paused")
    assert not [e for e in events_of(viewer.log) if e["type"] == "video_health"]
    fresh = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    assert "video_health" not in next(e for e in events_of(fresh.log) if e["type"] == "snapshot")
    again = await Client.open(
        live.url, seeded.show_id, live.token(Role.HOST, "Hana", seeded.show_id)
    )
    assert (await again.expect("snapshot"))["video_health"] is None  # (gone with the stream)
    for client in (host, viewer, late, fresh, again):
        await client.close()


async def test_questions_obey_mute_shadow_ban_and_blocked_words(live: LiveServer) -> None:
    seeded = await seed_show(live.app, products=1)
    mod = await _join(live, seeded.show_id, Role.MODERATOR, "Mo")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    walt = await _join(live, seeded.show_id, Role.VIEWER, "Walt")
    asked = await vera.request("ask", text="first question")
    question = await mod.expect("question")
    vera_uid = question["question"]["viewer_id"]
    assert question["question"]["id"] == asked["question_id"]
    assert (await mod.request("mute", user_id=vera_uid, seconds=10**9))["code"] == "invalid_input"
    assert (await mod.request("mute", user_id=vera_uid, seconds=60))["type"] == "ok"
    assert (await vera.request("ask", text="while muted"))["code"] == "muted"
    assert (await mod.request("blocked_words", words=["spoiler"]))["type"] == "ok"
    assert (await walt.request("ask", text="a Spoiler here"))["code"] == "blocked_words"
    assert (await mod.request("shadow_ban", user_id=vera_uid))["type"] == "ok"
    # the mute runs out (its key expires):
    await parts(live.app).resources.redis.delete(f"live:{{{seeded.show_id}}}:mute:{vera_uid}")
    hidden = await vera.request("ask", text="shadow question")
    assert hidden["type"] == "ok", hidden
    mine = await vera.expect("question")
    while mine["question"]["id"] != hidden["question_id"]:
        mine = await vera.expect("question")
    assert mine["question"]["text"] == "shadow question"
    queue = (await mod.request("queue"))["questions"]
    assert [q["text"] for q in queue] == ["first question"]
    await walt.request("ping")
    assert all(e.get("question", {}).get("text") != "shadow question" for e in events_of(walt.seen))
    for client in (mod, vera, walt):
        await client.close()
