"""Two real server processes on one Redis and one database behave as one show."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette

from checkout.events import OrderUpdate
from core.roles import Role
from live.checkout_events import LiveEventSink
from tests.live.conftest import Client, events_of, seed_show
from web.parts import parts


@pytest.fixture
def two_servers(two_server_ports: list[int]) -> list[str]:
    return [f"ws://127.0.0.1:{port}" for port in two_server_ports]


async def test_two_processes_are_one_show(app: Starlette, two_servers: list[str]) -> None:
    one, two = two_servers
    seeded = await seed_show(app)
    tokens = parts(app).tokens
    host = await Client.open(
        one, seeded.show_id, tokens.issue(Role.HOST, name="H", show_id=seeded.show_id)
    )
    vera_token = tokens.issue(Role.VIEWER, name="Vera")
    vera = await Client.open(one, seeded.show_id, vera_token)
    walt_token = tokens.issue(Role.VIEWER, name="Walt")
    walt = await Client.open(two, seeded.show_id, walt_token)
    for client in (host, vera, walt):
        await client.expect("snapshot")
    # a card pinned through process one reaches a viewer on process two
    await host.request("pin", product_id=seeded.product_ids[0])
    card = await walt.expect("card_pinned")
    assert card["card"]["name"] == "Product 0"
    # chat from process two reaches process one
    await walt.request("chat", text="from two")
    assert (await vera.expect("chat", text="from two"))["name"] == "Walt"
    # viewer counts are summed over both processes
    await vera.expect("viewers", now=2)
    await walt.expect("viewers", now=2)
    # a personal event reaches only its buyer, whichever process holds the socket
    walt_id = tokens.verify(walt_token).user_id
    sink = LiveEventSink(parts(app).resources.redis)
    await sink.publish(OrderUpdate(seeded.show_id, walt_id, "confirmed", order_id="ord_x"))
    assert (await walt.expect("order"))["order_id"] == "ord_x"
    # resume on the other process: exactly what was missed
    last_id = str(card["id"])
    await walt.close()
    await vera.request("chat", text="missed")
    back = await Client.open(one, seeded.show_id, walt_token, last_id=last_id)
    await back.expect("chat", text="missed")
    texts = [e.get("text") for e in events_of(back.log) if e["type"] == "chat"]
    assert texts == ["from two", "missed"]
    assert all(e["type"] != "snapshot" for e in back.log)
    await asyncio.sleep(0.3)
    assert all(e["type"] != "order" for e in events_of(vera.log))
    for client in (host, vera, back):
        await client.close()


async def test_chat_limits_hold_across_processes(app: Starlette, two_servers: list[str]) -> None:
    one, two = two_servers
    seeded = await seed_show(app)
    token = parts(app).tokens.issue(Role.VIEWER, name="Vera")
    first = await Client.open(one, seeded.show_id, token)
    await first.expect("snapshot")
    sent = [(await first.request("chat", text=f"m{n}"))["type"] for n in range(5)]
    assert sent == ["ok"] * 5  # the burst (5), from process one
    # process two has never seen this viewer, yet the burst is spent
    second = await Client.open(two, seeded.show_id, token)
    await second.expect("snapshot")
    refused = await second.request("chat", text="from two")
    assert refused["type"] == "error" and refused["code"] == "rate_limited"
    for client in (first, second):
        await client.close()
