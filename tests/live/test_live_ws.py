"""The live endpoint's door (web/live_ws.py): how a token is passed, and how many sockets
one identity or address may hold."""

from __future__ import annotations

import pytest

from core.roles import Role
from tests.live.conftest import Client, LiveServer, seed_show


@pytest.mark.parametrize("in_query", [False, True], ids=["subprotocol", "old query"])
async def test_the_token_travels_as_a_subprotocol_or_in_the_old_query(
    live: LiveServer, in_query: bool
) -> None:
    seeded = await seed_show(live.app)
    token = live.token(Role.HOST, "Hana", seeded.show_id)
    host = await Client.open(live.url, seeded.show_id, token, token_in_query=in_query)
    assert host.ws.subprotocol == "liveshop"
    assert (await host.expect("hello"))["role"] == "host"
    await host.close()
