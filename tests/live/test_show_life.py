"""The edges of a show's life on the live channel: an ended show refuses what needs a live
one with a code, its snapshot and status event carry the ended status and a replay_url;
a muted viewer is told how long; a ban reaches the removal listeners (their video)."""

from __future__ import annotations

from typing import Any

from checkout import catalog
from checkout.show_state import ShowStatus
from core.roles import Role
from tests.live.conftest import Client, LiveServer, seed_show
from web.parts import parts


async def test_an_ended_show_refuses_with_show_ended(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    viewer = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    host = await Client.open(
        live.url, seeded.show_id, live.token(Role.HOST, "Hana", seeded.show_id)
    )
    try:
        snapshot = await viewer.expect("snapshot")
        assert (snapshot["status"], snapshot["replay_url"]) == ("live", None)
        added = await viewer.request("add_to_cart", variant_id=seeded.variant_ids[0], quantity=1)
        assert added["type"] == "ok"
        async with parts(live.app).resources.sessions.begin() as session:  # as POST .../end
            await catalog.change_status(session, seeded.show_id, ShowStatus.ENDED)
        await parts(live.app).bus.show_status_changed(seeded.show_id, ShowStatus.ENDED)
        status = await viewer.expect("show_status")
        assert status["status"] == "ended" and "replay_url" in status
        await viewer.expect("order", status="cart_released", reason="show_ended")
        refused: list[tuple[str, dict[str, Any]]] = [
            ("chat", {"text": "hi"}),
            ("ask", {"text": "a question?"}),
            ("tap", {"product_id": seeded.product_ids[0]}),
            ("add_to_cart", {"variant_id": seeded.variant_ids[0], "quantity": 1}),
            (
                "buy_now",
                {
                    "variant_id": seeded.variant_ids[0],
                    "quantity": 1,
                    "idempotency_key": "k-ended",
                    "payment_method": "pm_card_ok",
                },
            ),
        ]
        for kind, fields in refused:
            reply = await viewer.request(kind, **fields)
            assert (kind, reply["type"], reply.get("code")) == (kind, "error", "show_ended"), reply
        pinned = await host.request("pin", product_id=seeded.product_ids[0])
        assert (pinned["type"], pinned["code"]) == ("error", "show_ended")
        cart = await viewer.request("view_cart")  # still readable: empty now
        assert (cart["type"], cart["cart"]["lines"]) == ("ok", [])
        late = await Client.open(live.url, seeded.show_id)
        snap = await late.expect("snapshot")
        assert (snap["status"], snap["replay_url"]) == ("ended", None)
        await late.close()
    finally:
        await viewer.close()
        await host.close()


async def test_a_muted_viewer_hears_how_long_and_a_ban_reaches_the_listeners(
    live: LiveServer,
) -> None:
    seeded = await seed_show(live.app)
    removed: list[tuple[str, str]] = []

    async def listener(show_id: str, user_id: str) -> None:
        removed.append((show_id, user_id))

    parts(live.app).live.removal_listeners.append(listener)
    viewer = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "Vera"))
    mod = await Client.open(
        live.url, seeded.show_id, live.token(Role.MODERATOR, "Mo", seeded.show_id)
    )
    try:
        uid = (await viewer.expect("hello"))["user_id"]
        assert (await mod.request("mute", user_id=uid, seconds=90))["type"] == "ok"
        await viewer.expect("moderation", action="mute", seconds=90)
        refused = await viewer.request("chat", text="hello?")
        assert refused["code"] == "muted"
        assert 85 <= refused["extra"]["seconds_left"] <= 90
        assert removed == []
        assert (await mod.request("ban", user_id=uid))["type"] == "ok"
        assert removed == [(seeded.show_id, uid)]
        assert await parts(live.app).live.is_banned(seeded.show_id, uid)
    finally:
        await viewer.close()
        await mod.close()
