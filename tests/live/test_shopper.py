"""What a shopper sees over the live channel (issue 14, part B): one viewer in two tabs is
one viewer, a poll remembers your vote and refuses a second one with it, reactions keep a
running total that a reload shows, and cards carry the description and each price's
minor unit."""

from __future__ import annotations

import asyncio

from checkout import catalog
from core.roles import Role
from tests.live.conftest import Client, LiveServer, seed_show
from web.parts import parts


async def _join(live: LiveServer, show_id: str, token: str) -> Client:
    client = await Client.open(live.url, show_id, token)
    await client.expect("snapshot")
    return client


async def test_two_tabs_of_one_viewer_count_once(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    show = seeded.show_id
    host = await _join(live, show, live.token(Role.HOST, "Hana", show))
    vera_token = live.token(Role.VIEWER, "Vera")
    tabs = [await _join(live, show, vera_token) for _ in range(3)]
    walt = await _join(live, show, live.token(Role.VIEWER, "Walt"))
    await host.expect("viewers", now=2, peak=2)
    await asyncio.sleep(1.2)  # a few more counts: still two
    stats = await host.request("stats")
    assert (stats["viewers_now"], stats["viewers_peak"]) == (2, 2)
    await tabs[0].close()
    await tabs[1].close()  # one tab of Vera's is left: still two viewers
    await asyncio.sleep(1.2)
    assert (await host.request("stats"))["viewers_now"] == 2
    await tabs[2].close()
    await host.expect("viewers", now=1, peak=2, wait_s=3)
    for client in (host, walt):
        await client.close()


async def test_a_second_vote_is_refused_with_the_first_choice_and_a_reload_shows_it(
    live: LiveServer,
) -> None:
    seeded = await seed_show(live.app)
    show = seeded.show_id
    host = await _join(live, show, live.token(Role.HOST, "Hana", show))
    vera_token = live.token(Role.VIEWER, "Vera")
    vera = await _join(live, show, vera_token)
    poll_id = (await host.request("open_poll", question="Colour?", options=["red", "blue"]))[
        "poll_id"
    ]
    await vera.expect("poll_opened")
    assert (await vera.request("vote", poll_id=poll_id, option=1))["option"] == 1
    again = await vera.request("vote", poll_id=poll_id, option=0)
    assert again["type"] == "error" and again["code"] == "already_voted"
    assert again["extra"] == {"option": 1, "choice": "blue"}
    await vera.expect("poll_tally", tally={"1": 1})
    reloaded = await Client.open(live.url, show, vera_token)
    snap = await reloaded.expect("snapshot")
    assert snap["my_vote"] == 1 and snap["poll"]["tally"] == {"1": 1}
    walt = await Client.open(live.url, show, live.token(Role.VIEWER, "Walt"))
    assert (await walt.expect("snapshot"))["my_vote"] is None
    for client in (host, vera, reloaded, walt):
        await client.close()


async def test_reactions_keep_a_running_total_that_a_snapshot_shows(live: LiveServer) -> None:
    seeded = await seed_show(live.app)
    show = seeded.show_id
    vera_token = live.token(Role.VIEWER, "Vera")
    vera = await _join(live, show, vera_token)
    for burst in (2, 3):
        for _ in range(burst):
            await vera.ws.send('{"type":"react","emoji":"<3"}')
        await asyncio.sleep(0.4)  # each burst in a tick of its own
    totals = 0
    while totals < 5:
        event = await vera.expect("reactions")
        assert event["counts"]["<3"] <= 3  # a tick's count
        totals = event["totals"]["<3"]  # the show's running total
    assert totals == 5
    await asyncio.sleep(0.6)  # past the snapshot cache
    reloaded = await Client.open(live.url, show, vera_token)
    assert (await reloaded.expect("snapshot"))["reactions"] == {"<3": 5}
    for client in (vera, reloaded):
        await client.close()


async def test_cards_carry_the_description_and_each_prices_minor_unit(live: LiveServer) -> None:
    seeded = await seed_show(live.app, products=1)
    show = seeded.show_id
    async with parts(live.app).resources.sessions.begin() as session:
        spec = catalog.ProductSpec(
            name="Tea bowl",
            description="Hand-thrown in Mashiko.",
            variants=[catalog.VariantSpec(f"BOWL-{show}", 1200, "JPY", 4)],
        )
        bowl = await catalog.add_product(session, show, spec)
    host = await _join(live, show, live.token(Role.HOST, "Hana", show))
    card = (await host.request("pin", product_id=bowl.id))["card"]
    assert card["description"] == "Hand-thrown in Mashiko."
    assert card["price"] == {"amount": 1200, "currency": "JPY", "exponent": 0}
    assert card["variants"][0]["price"]["exponent"] == 0
    vera = await Client.open(live.url, show, live.token(Role.VIEWER, "Vera"))
    snap = await vera.expect("snapshot")
    assert snap["currencies"] == {"EUR": 2, "JPY": 0}
    assert snap["cards"][0]["description"] == "Hand-thrown in Mashiko."
    for client in (host, vera):
        await client.close()
