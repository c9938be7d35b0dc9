"""Two processes on one Redis serve one relay per show: a WHIP or WHEP request that lands
on the process which does not serve the show is answered by the one that does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette

from benches.synthetic import PatternTrack
from core.roles import Role
from signaling.ice import IcePolicy, IceServer
from signaling.placement import VideoPlacement
from tests.conftest import admin_headers, make_settings
from tests.live.conftest import seed_show
from tests.signaling.support import app_process, end, offer_whip, play, publish
from web.parts import parts

process = app_process


async def test_a_show_is_served_by_one_process_whichever_gets_the_request(
    tmp_path: Path, db_url: str, redis_url: str, redis_client: aioredis.Redis
) -> None:
    settings = make_settings(tmp_path, db_url, redis_url, ice_host_addresses=["127.0.0.1"])
    async with process(settings) as (one, http_one), process(settings) as (two, http_two):
        seeded = await seed_show(one)
        show = seeded.show_id
        host_token = parts(one).tokens.issue(Role.HOST, name="H", show_id=show)
        # junk in a process's inbox is dropped; the requests after it are answered
        inbox = f"liveshop:video:inbox:{parts(one).placement.process_id}"
        await redis_client.rpush(inbox, "not json", '{"deadline": "soon"}', "[]")
        host = await publish(http_one, PatternTrack(), show=show, token=host_token)
        # the viewer's request reaches process two, which does not serve this show
        viewer = await play(http_two, show=show, token=None)
        await viewer.wait_frames(20)
        served: VideoPlacement = parts(one).placement
        forwarding: VideoPlacement = parts(two).placement
        assert parts(one).video.stats()["viewers"] == 1
        assert parts(one).video.stats()["publishers"] == 1
        assert parts(two).video.stats()["peer_connections"] == 0
        assert forwarding.forwarded == 1 and served.served_for_others == 1
        # what each process tells Prometheus
        scraped_one = (await http_one.get("/metrics")).text
        for line in (
            "liveshop_video_publishers 1.0",
            "liveshop_video_viewers 1.0",
            "liveshop_video_relays 1.0",
            "liveshop_video_served_for_others_total 1.0",
            "liveshop_video_forwarded_total 0.0",
        ):
            assert f"\n{line}\n" in scraped_one, line
        scraped_two = (await http_two.get("/metrics")).text
        assert "\nliveshop_video_viewers 0.0\n" in scraped_two
        assert "\nliveshop_video_forwarded_total 1.0\n" in scraped_two
        claim = f"liveshop:video:owner:{show}"
        assert await redis_client.get(claim) == served.process_id
        # a claim that ran out (a late renewal) is taken again while the show is served
        await redis_client.delete(claim)
        await served.renew_once()
        assert await redis_client.get(claim) == served.process_id
        assert 0 < await redis_client.ttl(claim) <= 15
        # the owner's answer comes back whole: status, Location, every Link header
        links = [IceServer("stun:127.0.0.1:3478"), IceServer("stun:127.0.0.1:3479")]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(IcePolicy, "servers", lambda self, session, now=None: links)
            second = await play(http_two, show=show, token=None)
        assert second.response.headers.get_list("link") == [
            '<stun:127.0.0.1:3478>; rel="ice-server"',
            '<stun:127.0.0.1:3479>; rel="ice-server"',
        ]
        assert second.location.startswith(f"/whep/{show}/")
        await second.wait_frames(5)
        assert (await end(http_two, second)).status_code == 200
        await second.close()
        # an offer too large is refused where it lands, before it is handed on
        huge = await http_two.post(
            f"/whep/{show}",
            content=b"v=0\r\n" * 20_000,
            headers={"Content-Type": "application/sdp"},
        )
        assert (huge.status_code, huge.json()["error"]["code"]) == (413, "body_too_large")
        # one publisher per show, whichever process is asked
        other = parts(one).tokens.issue(Role.HOST, name="H2", show_id=show)
        refused = await offer_whip(http_two, other, show=show)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "publisher_conflict"
        # ending the viewer's session through process two ends it where it lives
        assert (await end(http_two, viewer)).status_code == 200
        assert parts(one).video.stats()["viewers"] == 0
        await viewer.close()
        assert (await end(http_two, host)).status_code == 200
        await host.close()
        assert parts(one).video.stats()["publishers"] == 0
        # with nothing left to serve, the claim is given up at the next renewal
        await served.renew_once()
        assert await redis_client.get(f"liveshop:video:owner:{show}") is None


async def test_an_owner_that_does_not_answer_gives_503_and_leaves_nothing(
    tmp_path: Path,
    db_url: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("signaling.placement.FORWARD_TIMEOUT_S", 0.5)
    settings = make_settings(tmp_path, db_url, redis_url, ice_host_addresses=["127.0.0.1"])
    async with process(settings) as (app, http):
        show = (await seed_show(app)).show_id
        # a process that claimed the show and then died (its claim has not run out yet)
        await redis_client.set(f"liveshop:video:owner:{show}", "gone", ex=15)
        refused = await offer_whip(
            http, parts(app).tokens.issue(Role.HOST, name="H", show_id=show), show=show
        )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "video_unavailable"
        assert refused.headers["access-control-allow-origin"] == "*"
        assert parts(app).video.stats()["peer_connections"] == 0


async def test_two_server_processes_serve_one_relay(
    app: Starlette, two_server_ports: list[int]
) -> None:
    show = (await seed_show(app)).show_id
    host_token = parts(app).tokens.issue(Role.HOST, name="H", show_id=show)
    port_one, port_two = two_server_ports
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_one}", timeout=30) as one,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_two}", timeout=30) as two,
    ):
        host = await publish(one, PatternTrack(), show=show, token=host_token)
        viewers = [await play(http, show=show, token=None) for http in (two, one, two)]
        for viewer in viewers:
            await viewer.wait_frames(20)
        for client in (*viewers, host):
            assert (await end(two, client)).status_code == 200
            await client.close()


async def test_a_process_that_lost_its_show_to_another_ends_its_peers_there(
    tmp_path: Path, db_url: str, redis_url: str, redis_client: aioredis.Redis
) -> None:
    settings = make_settings(tmp_path, db_url, redis_url, ice_host_addresses=["127.0.0.1"])
    async with process(settings) as (app, http):
        show = (await seed_show(app)).show_id
        token = parts(app).tokens.issue(Role.HOST, name="H", show_id=show)
        host = await publish(http, PatternTrack(), show=show, token=token)
        viewer = await play(http, show=show, token=None)
        await viewer.wait_frames(5)
        placement: VideoPlacement = parts(app).placement
        # the claim ran out and another process claimed the show (two relays for one show)
        await redis_client.set(f"liveshop:video:owner:{show}", "other", ex=15)
        await placement.renew_once()
        stats = parts(app).video.stats()
        assert (stats["publishers"], stats["viewers"], stats["peer_connections"]) == (0, 0, 0)
        assert await redis_client.get(f"liveshop:video:owner:{show}") == "other"
        await viewer.close()
        await host.close()


async def test_the_end_of_a_show_and_a_ban_reach_the_process_serving_its_video(
    tmp_path: Path, db_url: str, redis_url: str, redis_client: aioredis.Redis
) -> None:
    settings = make_settings(tmp_path, db_url, redis_url, ice_host_addresses=["127.0.0.1"])
    async with process(settings) as (one, http_one), process(settings) as (two, http_two):
        seeded = await seed_show(one)
        show = seeded.show_id
        host_token = parts(one).tokens.issue(Role.HOST, name="H", show_id=show)
        host = await publish(http_one, PatternTrack(), show=show, token=host_token)
        tokens = parts(one).tokens
        spam, vera = tokens.issue(Role.VIEWER, name="S"), tokens.issue(Role.VIEWER, name="V")
        banned = await play(http_two, show=show, token=spam)
        kept = await play(http_two, show=show, token=vera)
        await kept.wait_frames(5)
        assert parts(one).video.stats()["viewers"] == 2
        # the ban is asked of process two, whose video is served by process one
        await parts(two).placement.remove_viewer(show, tokens.verify(spam).user_id)
        for _ in range(100):
            if parts(one).video.stats()["viewers"] == 1:
                break
            await asyncio.sleep(0.05)
        assert parts(one).video.stats()["viewers"] == 1
        # and so is the end of the show
        ended = await http_two.post(f"/api/shows/{show}/end", headers=admin_headers())
        assert ended.status_code == 200
        for _ in range(100):
            if parts(one).video.stats()["peer_connections"] == 0:
                break
            await asyncio.sleep(0.05)
        assert parts(one).video.stats()["peer_connections"] == 0
        refused = await http_two.post(
            f"/whep/{show}", content=b"v=0\r\n", headers={"Content-Type": "application/sdp"}
        )
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "show_ended")
        for client in (banned, kept, host):
            await client.close()
