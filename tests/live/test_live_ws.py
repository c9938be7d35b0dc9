"""The live endpoint's door (web/live_ws.py): how a token is passed, and how many sockets
one identity or address may hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from core.roles import Role
from tests.conftest import make_settings
from tests.live.conftest import Client, LiveServer, seed_show, start_server
from web.app import create_app
from web.parts import parts


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


@pytest.fixture
async def tight(
    tmp_path: Path, db_url: str, redis_url: str, redis_client: Any
) -> AsyncIterator[LiveServer]:
    """A live server that admits 2 sockets per identity and 3 anonymous ones per address."""
    settings = make_settings(
        tmp_path, db_url, redis_url, max_sockets_per_user=2, max_sockets_per_address=3
    )
    app = create_app(settings)
    server, task, port = await start_server(app)
    try:
        yield LiveServer(app, f"ws://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _refused(client: Client) -> tuple[str, int]:
    """(the error code, the close code) of a socket refused at the door."""
    error = await client.expect("error")
    with pytest.raises(ConnectionClosed) as closed:
        await client.next()
    assert closed.value.rcvd is not None
    return str(error["code"]), closed.value.rcvd.code


async def test_sockets_per_identity_are_bounded(tight: LiveServer) -> None:
    show_id = (await seed_show(tight.app)).show_id
    vera = tight.token(Role.VIEWER, "Vera")
    held = [await Client.open(tight.url, show_id, vera) for _ in range(2)]
    for client in held:
        assert (await client.expect("hello"))["role"] == "viewer"
    over = await Client.open(tight.url, show_id, vera, token_in_query=True)  # either way
    assert await _refused(over) == ("too_many_sockets", 4429)
    other = await Client.open(tight.url, show_id, tight.token(Role.VIEWER, "Olga"))
    assert (await other.expect("hello"))["role"] == "viewer"  # (per identity)
    await held.pop().close()
    for _ in range(100):  # the server hears of the close a moment later
        again = await Client.open(tight.url, show_id, vera)
        if (await again.next())["type"] == "hello":
            break
        await again.close()
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("a closed socket still counted")
    for client in (*held, other, again):
        await client.close()


async def test_anonymous_sockets_per_address_are_bounded(tight: LiveServer) -> None:
    show_id = (await seed_show(tight.app)).show_id
    watchers = [await Client.open(tight.url, show_id) for _ in range(3)]
    for client in watchers:
        assert (await client.expect("hello"))["role"] == "anonymous"
    assert await _refused(await Client.open(tight.url, show_id)) == ("too_many_sockets", 4429)
    # a refusal for the token does not count either; a signed-in socket counts per identity
    forged = await Client.open(tight.url, show_id, "forged.token.value")
    assert await _refused(forged) == ("auth_invalid", 4401)
    viewer = await Client.open(tight.url, show_id, tight.token(Role.VIEWER, "Vera"))
    assert (await viewer.expect("hello"))["role"] == "viewer"
    for client in (*watchers, viewer):
        await client.close()


async def test_a_join_that_fails_says_so_and_closes_for_a_resume(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis refusing mid-join (down, or paused past its timeout) used to drop the socket
    # with 1006 and nothing said; the client now hears internal_error and a 1011 close.
    from redis.exceptions import ConnectionError as RedisDown

    seeded = await seed_show(live.app)
    hub = (await parts(live.app).live.room(seeded.show_id)).hub

    async def down(*_: Any, **__: Any) -> None:
        raise RedisDown("Redis is down")

    monkeypatch.setattr(hub, "join", down)
    client = await Client.open(live.url, seeded.show_id, live.token(Role.VIEWER, "V"))
    try:
        error = await client.expect("error")
        assert (error["code"], error["ref"]) == ("internal_error", None)
        assert await client.close_code() == 1011
    finally:
        await client.close()
