"""What the host studio relies on: the host answers any asked question (no moderator in
between) and the stats carry the running deals with their units left."""

from __future__ import annotations

from core.roles import Role
from tests.live.conftest import Client, LiveServer, seed_show


async def _join(live: LiveServer, show_id: str, role: Role, name: str) -> Client:
    client = await Client.open(live.url, show_id, live.token(role, name, show_id))
    await client.expect("snapshot")
    return client


async def test_host_sees_and_answers_an_asked_question(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    qid = (await vera.request("ask", text="Is it wool?"))["question_id"]
    assert (await host.expect("question"))["question"]["status"] == "asked"
    assert [q["id"] for q in (await host.request("queue"))["questions"]] == [qid]
    answered = await host.request("answer", question_id=qid, text="Merino wool.")
    assert answered["type"] == "ok" and answered["answer_s"] >= 0
    got = (await vera.expect("answer"))["question"]
    assert (got["id"], got["status"], got["answer"]) == (qid, "answered", "Merino wool.")
    assert (await host.request("stats"))["questions"]["answered"] == 1
    # approving stays the moderators' (the host answers directly)
    assert (await host.request("approve", question_id=qid))["code"] == "forbidden_role"
    for client in (host, vera):
        await client.close()


async def test_stats_list_running_deals_with_units_left(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    variant = seeded.variant_ids[0]
    host = await _join(live, seeded.show_id, Role.HOST, "Hana")
    vera = await _join(live, seeded.show_id, Role.VIEWER, "Vera")
    assert (await host.request("stats"))["deals"] == []
    await host.request("start_deal", variant_id=variant, price_minor=500, units=3, duration_s=60)
    bought = await vera.request(
        "buy_now", variant_id=variant, quantity=1, idempotency_key="k1", payment_method="pm_card_ok"
    )
    assert bought["type"] == "ok", bought
    deals = (await host.request("stats"))["deals"]
    assert [(d["variant_id"], d["units"], d["units_left"]) for d in deals] == [(variant, 3, 2)]
    assert deals[0]["price"] == {"amount": 500, "currency": "EUR"}
    await host.request("stop_deal", variant_id=variant)
    assert (await host.request("stats"))["deals"] == []
    for client in (host, vera):
        await client.close()
