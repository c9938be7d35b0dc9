"""Edge relays: past the origin's viewer budget a show's viewers are served by an edge
relay in another process, fed by the origin; the edge follows the show when its origin
goes away, lets its feed go when idle, and ends with the show."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from starlette.applications import Starlette

from benches.fanout import server_processes
from benches.synthetic import PatternTrack
from config import Settings
from core.roles import Role
from signaling.feed import EdgeFeed, FeedServer, feed_auth
from signaling.placement import VideoPlacement
from tests.conftest import admin_headers, make_settings, server_env
from tests.live.conftest import seed_show
from tests.signaling.support import app_process, end, play, publish
from web.parts import parts

process = app_process


async def until(check: Callable[[], bool], within: float = 10) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls state other tasks change
            await asyncio.sleep(0.05)


def placement(app: Starlette) -> VideoPlacement:
    found: VideoPlacement = parts(app).placement
    return found


async def ready(*apps: Starlette) -> None:
    """Each process has said it is alive, with its feed's address."""
    await until(lambda: all(placement(app).feed.port for app in apps))
    for app in apps:
        await placement(app).renew_once()


def edge_settings(tmp_path: Path, db_url: str, redis_url: str, **extra: Any) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        redis_url,
        ice_host_addresses=["127.0.0.1"],
        video_viewers_per_process=1,
        **extra,
    )


async def test_past_the_origins_budget_a_viewer_is_served_by_an_edge_in_another_process(
    tmp_path: Path, db_url: str, redis_url: str, redis_client: aioredis.Redis
) -> None:
    settings = edge_settings(tmp_path, db_url, redis_url)
    async with process(settings) as (one, http_one), process(settings) as (two, http_two):
        await ready(one, two)
        show = (await seed_show(one)).show_id
        host_token = parts(one).tokens.issue(Role.HOST, name="H", show_id=show)
        host = await publish(http_one, PatternTrack(), show=show, token=host_token)
        first = await play(http_two, show=show, token=None)  # the origin has room
        await first.wait_frames(10)
        assert parts(one).video.viewer_count(show) == 1
        # the origin is full: the next viewer, whichever process it asks, is on an edge
        second = await play(http_one, show=show, token=None)
        await second.wait_frames(20)
        assert parts(two).video.viewer_count(show) == 1
        edges = placement(two).edge_stats()
        assert (edges["edges"], edges["edge_viewers"], edges["edge_connects"]) == (1, 1, 1)
        assert placement(one).feed.edges_of(show) == 1
        assert edges["hop_ms"] and max(edges["hop_ms"]) < 1000
        # frames come in order, without a gap longer than a keyframe wait
        indexes = [index for index, _ in second.frames]
        assert indexes == sorted(indexes)
        relays = await redis_client.hgetall(f"liveshop:video:relays:{show}")
        assert set(relays) == {placement(one).process_id, placement(two).process_id}
        # every relay is full and the show plays over HLS: refused, the page goes there
        placement(one).has_hls = placement(two).has_hls = _yes
        refused = await http_one.post(
            f"/whep/{show}",
            content=_offer_stub(),
            headers={"Content-Type": "application/sdp"},
        )
        assert (refused.status_code, refused.json()["error"]["code"]) == (503, "video_full")
        assert parts(one).video.viewer_count(show) == 1
        assert parts(two).video.viewer_count(show) == 1
        scraped = (await http_one.get("/metrics")).text
        assert "\nliveshop_video_refused_full_total 1.0\n" in scraped
        assert "\nliveshop_video_edge_feeds 1.0\n" in scraped
        assert "\nliveshop_video_edges 1.0\n" in (await http_two.get("/metrics")).text
        placement(one).has_hls = placement(two).has_hls = None
        # a viewer's DELETE reaches the process that serves it, whichever it lands on
        assert (await end(http_one, second)).status_code == 200
        await until(lambda: parts(two).video.viewer_count(show) == 0)
        await second.close()
        await placement(two).renew_once()  # (the counts are corrected every few seconds)
        # the host stops and comes back: the edge's viewer resumes at the new keyframe
        third = await play(http_two, show=show, token=None)
        assert parts(two).video.viewer_count(show) == 1
        await third.wait_frames(10)
        assert (await end(http_one, host)).status_code == 200
        await host.close()
        await asyncio.sleep(0.3)
        seen = len(third.frames)
        host = await publish(http_two, PatternTrack(), show=show, token=host_token)
        await third.wait_frames(seen + 20)
        assert placement(one).feed.edges_of(show) == 1
        # the end of the show reaches the edge too
        ended = await http_two.post(f"/api/shows/{show}/end", headers=admin_headers())
        assert ended.status_code == 200
        await until(lambda: parts(two).video.stats()["peer_connections"] == 0)
        await until(lambda: placement(two).edge_stats()["edges"] == 0)
        for client in (first, third, host):
            await client.close()


async def test_an_edge_follows_its_show_to_a_new_origin_and_lets_go_when_idle(
    tmp_path: Path, db_url: str, redis_url: str, redis_client: aioredis.Redis
) -> None:
    settings = edge_settings(tmp_path, db_url, redis_url, video_edge_idle_s=1)
    async with contextlib.AsyncExitStack() as stack:
        one, http_one = await stack.enter_async_context(process(settings))
        two, http_two = await stack.enter_async_context(process(settings))
        origin = contextlib.AsyncExitStack()
        three, http_three = await origin.enter_async_context(process(settings))
        await ready(one, two, three)
        show = (await seed_show(one)).show_id
        host_token = parts(one).tokens.issue(Role.HOST, name="H", show_id=show)
        host = await publish(http_three, PatternTrack(), show=show, token=host_token)
        first = await play(http_three, show=show, token=None)
        edge_viewer = await play(http_two, show=show, token=None)
        await edge_viewer.wait_frames(10)
        assert parts(two).video.viewer_count(show) == 1
        # the origin's process goes away (its claim is released as it stops)
        await host.close()
        await first.close()
        await origin.aclose()
        await until(lambda: not placement(two).edge_stats()["feeds_served"])
        assert await redis_client.get(f"liveshop:video:owner:{show}") is None
        # the host comes back on process one: the edge finds it and its viewer resumes
        seen = len(edge_viewer.frames)
        host = await publish(http_one, PatternTrack(), show=show, token=host_token)
        await edge_viewer.wait_frames(seen + 20, within=15)
        assert placement(two).edge_stats()["edge_connects"] == 2
        assert placement(one).feed.edges_of(show) == 1
        # the edge's last viewer leaves: after edge_idle_s its feed is let go
        assert (await end(http_one, edge_viewer)).status_code == 200
        await edge_viewer.close()
        await placement(two).renew_once()
        await asyncio.sleep(1.1)
        await placement(two).renew_once()
        assert placement(two).edge_stats()["edges"] == 0
        await until(lambda: placement(one).feed.edges_of(show) == 0)
        relays = await redis_client.hgetall(f"liveshop:video:relays:{show}")
        assert placement(two).process_id not in relays
        assert (await end(http_one, host)).status_code == 200
        await host.close()


async def test_an_edges_viewer_keeps_watching_when_the_origin_worker_is_killed(
    app: Starlette, settings: Settings, tmp_path: Path
) -> None:
    """Two real worker processes: the origin is SIGKILLed mid-stream; the host publishes
    again (its claim runs out within 15 s); the edge's viewer resumes, never re-asked."""
    env = server_env(settings, tmp_path, LIVESHOP_VIDEO_VIEWERS_PER_PROCESS="1")
    show = (await seed_show(app)).show_id
    host_token = parts(app).tokens.issue(Role.HOST, name="H", show_id=show)
    with server_processes(2, env, tmp_path) as servers:
        (port_one, pid_one), (port_two, _) = servers
        await asyncio.sleep(0.5)  # (each worker has said it is alive)
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_one}", timeout=30) as one,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_two}", timeout=30) as two,
        ):
            host = await publish(one, PatternTrack(), show=show, token=host_token)
            first = await play(two, show=show, token=None)
            watcher = await play(two, show=show, token=None)  # past the budget: on the edge
            await watcher.wait_frames(20)
            scraped = (await two.get("/metrics")).text
            assert "\nliveshop_video_edges 1.0\n" in scraped
            assert "\nliveshop_video_viewers 1.0\n" in scraped
            os.kill(pid_one, signal.SIGKILL)
            await host.close()
            await first.close()
            seen = len(watcher.frames)
            # the host's studio retries until the dead worker's claim has run out
            deadline = time.monotonic() + 30
            while True:
                try:
                    host = await publish(two, PatternTrack(), show=show, token=host_token)
                    break
                except AssertionError:
                    assert time.monotonic() < deadline, "the host could not publish again"
                    await asyncio.sleep(1)

            def restarted() -> list[int]:
                """The new host's frames, from its first (a keyframe) on."""
                indexes = [index for index, _ in watcher.frames[seen:]]
                return indexes[indexes.index(0) :] if 0 in indexes else []

            # (frames of the old host still on their way may come first)
            await until(lambda: len(restarted()) >= 20, within=15)
            assert restarted() == sorted(restarted())  # in order
            for client in (watcher, host):
                assert (await end(two, client)).status_code == 200
                await client.close()


async def test_a_full_show_with_hls_refuses_video_full_and_its_playlist_plays_on(
    tmp_path: Path, db_url: str, redis_url: str
) -> None:
    """One process, its budget reached, an H.264 host (packaged): the next viewer is told
    to watch over HLS; with a VP8 host (no HLS) it is placed past the budget instead."""
    from aiortc.mediastreams import AudioStreamTrack

    from benches.synthetic import EncodedPatternTrack

    settings = edge_settings(tmp_path, db_url, redis_url)
    async with process(settings) as (app, http):
        await ready(app)
        show = (await seed_show(app)).show_id
        token = parts(app).tokens.issue(Role.HOST, name="H", show_id=show)
        track = EncodedPatternTrack("h264", gop=15)
        host = await publish(
            http, track, show=show, token=token, codec="h264", audio=AudioStreamTrack()
        )
        first = await play(http, show=show, token=None)
        playlist = f"/hls/{show}/index.m3u8"
        await until_ok(http, playlist)
        refused = await http.post(
            f"/whep/{show}", content=_offer_stub(), headers={"Content-Type": "application/sdp"}
        )
        assert (refused.status_code, refused.json()["error"]["code"]) == (503, "video_full")
        assert playlist in refused.json()["error"]["message"]
        assert parts(app).video.viewer_count(show) == 1
        assert (await http.get(playlist)).status_code == 200
        for client in (first, host):
            assert (await end(http, client)).status_code == 200
            await client.close()
        # a VP8 host: no HLS, so a viewer past the budget is still served
        await placement(app).renew_once()
        host = await publish(http, PatternTrack(), show=show, token=token)
        await placement(app).renew_once()
        viewers = [await play(http, show=show, token=None) for _ in range(2)]
        for viewer in viewers:
            await viewer.wait_frames(5)
        assert parts(app).video.viewer_count(show) == 2
        for client in (*viewers, host):
            await client.close()


async def until_ok(http: httpx.AsyncClient, path: str, within: float = 15) -> None:
    async with asyncio.timeout(within):
        while (await http.get(path)).status_code != 200:  # noqa: ASYNC110 - polls HTTP
            await asyncio.sleep(0.2)


async def test_a_feed_refuses_an_edge_without_the_secret() -> None:
    relays: list[str] = []

    def relay_for(show_id: str) -> Any:
        relays.append(show_id)
        return None

    server = FeedServer(b"s" * 32, relay_for, lambda show_id: None)
    port = await server.start("127.0.0.1")
    try:
        from signaling.relay import ShowRelay

        async def locate() -> tuple[str, int]:
            return "127.0.0.1", port

        wrong = EdgeFeed("show", ShowRelay("show", 10, 1.0), locate, b"x" * 32)
        wrong.start()
        assert not await wrong.wait_ready(0.5)
        await wrong.close()
        assert relays == []  # refused before any relay was looked up
        right = EdgeFeed("show", ShowRelay("show", 10, 1.0), locate, b"s" * 32)
        right.start()
        await until(lambda: relays == ["show"] or len(relays) > 1)
        await right.close()
        assert feed_auth(b"s" * 32, "show") != feed_auth(b"s" * 32, "other")
    finally:
        await server.close()


async def _yes(show_id: str) -> bool:
    return True


def _offer_stub() -> bytes:
    """A viewer's offer; refused before it is read further (placement comes first)."""
    return b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
