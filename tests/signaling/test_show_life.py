"""The host's hang-up pauses a show (viewers stay and resume); the end of a show closes
its publisher and every viewer; a removed viewer's sessions are closed, others' kept."""

from __future__ import annotations

import asyncio

from benches.synthetic import EncodedPatternTrack
from signaling import VideoState

from .support import NOTHING_LEFT, end, owned, play, publish, running_server
from .test_lifecycle import wait_stats


async def test_a_hang_up_pauses_and_the_viewer_resumes() -> None:
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewer = await play(server.http)
        await viewer.wait_frames(10)
        assert (await end(server.http, host)).status_code == 200
        await server.gate.wait_state("show1", VideoState.PAUSED)
        assert server.service.stats()["viewers"] == 1  # the viewer stays attached
        before = len(viewer.frames)
        again = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        await server.gate.wait_state("show1", VideoState.LIVE)
        await viewer.wait_frames(before + 10)
        states = [s for show, s in server.gate.states if show == "show1"]
        assert states == [VideoState.LIVE, VideoState.PAUSED, VideoState.LIVE]
        await viewer.close()
        await again.close()
        await host.close()


async def test_the_end_of_a_show_closes_every_peer_of_it() -> None:
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewers = [await play(server.http), await play(server.http, token="viewer:show1:b")]
        for viewer in viewers:
            await viewer.wait_frames(5)
        await server.service.end_show("show1")
        await server.gate.wait_state("show1", VideoState.OFFLINE)
        await wait_stats(server, "peer_connections", 0)
        await wait_stats(server, "tasks", 0)
        assert owned(server.service.stats()) == NOTHING_LEFT
        for client in (*viewers, host):
            await client.close()


async def test_a_removed_viewer_loses_their_sessions_only() -> None:
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        await server.gate.wait_state("show1", VideoState.LIVE)
        banned = await play(server.http, token="viewer:show1:spam")
        kept = await play(server.http, token="viewer:show1:vera")
        await banned.wait_frames(5)
        assert await server.service.remove_viewer("show1", "viewer:show1:spam") == 1
        assert await server.service.remove_viewer("show1", "viewer:show1:nobody") == 0
        await wait_stats(server, "viewers", 1)
        before = len(kept.frames)
        await kept.wait_frames(before + 10)  # the others keep watching
        for client in (banned, kept, host):
            await client.close()


async def test_a_paused_show_that_ends_goes_offline() -> None:
    # (a paused show was kept as no state, so the end found it "offline" already and said
    # nothing: the show stayed "paused" for its viewers and in Redis)
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        await server.gate.wait_state("show1", VideoState.LIVE)
        assert (await end(server.http, host)).status_code == 200
        await server.gate.wait_state("show1", VideoState.PAUSED)
        await server.service.end_show("show1")
        await server.gate.wait_state("show1", VideoState.OFFLINE)
        states = [s for show, s in server.gate.states if show == "show1"]
        assert states == [VideoState.LIVE, VideoState.PAUSED, VideoState.OFFLINE]
        await host.close()


async def test_the_publishers_keyframe_interval_is_reported_with_its_codec() -> None:
    """Every ``health_report_s`` the relay says what it measures of the host: a 2 s
    interval (60 frames at 30 fps) as 2 s, the open gap counted before a second keyframe."""
    async with running_server() as server:
        server.service.health_report_s = 0.25
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=60))
        await server.gate.wait_state("show1", VideoState.LIVE)
        deadline = asyncio.get_running_loop().time() + 15
        while not any(
            h.keyframe_interval_s is not None and h.keyframe_interval_s > 1.5
            for _, _, h in server.gate.health
        ):
            assert asyncio.get_running_loop().time() < deadline, server.gate.health
            await asyncio.sleep(0.1)
        first = server.gate.health[0]
        assert first[:2] == ("show1", "host:show1")
        assert first[2].codec == "video/vp8"
        await asyncio.sleep(6 - 0.25 * len(server.gate.health))  # three keyframes at least
        last = server.gate.health[-1][2]
        assert last.keyframe_interval_s is not None
        assert 1.7 <= last.keyframe_interval_s <= 2.6, last
        assert 20_000 < last.bitrate_bps < 2_000_000, last  # (a plain pattern: about 90 kbit/s)
        # the open gap grows between keyframes: reports before the second one rise
        early = [h.keyframe_interval_s or 0.0 for _, _, h in server.gate.health[:6]]
        assert early == sorted(early), early
        count = len(server.gate.health)
        await end(server.http, host)
        await server.gate.wait_state("show1", VideoState.PAUSED)
        await asyncio.sleep(0.6)
        assert len(server.gate.health) == count  # nothing once the host hung up
        await host.close()
