from __future__ import annotations

import asyncio
import itertools
import time

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

from benches.synthetic import EncodedPatternTrack, PatternTrack
from signaling import VideoState
from signaling.aiortc_hooks import SharedH264Packer

from .support import (
    _exchange,
    end,
    offer_whip,
    play,
    prefer,
    publish,
    running_server,
    wait_index,
)


async def test_publish_and_play_vp8() -> None:
    async with running_server() as server:
        host = await publish(server.http, PatternTrack())
        assert host.response.headers["content-type"] == "application/sdp"
        assert host.location.startswith("/whip/show1/")
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewer = await play(server.http)
        await viewer.wait_frames(20)
        indexes = [i for i, _ in viewer.frames]
        assert indexes == sorted(indexes)
        assert "VP8" in viewer.response.text
        assert server.service.stats()["viewers"] == 1
        await viewer.close()
        await host.close()


async def test_publish_and_play_h264() -> None:
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("h264", gop=30), codec="h264")
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewer = await play(server.http)
        await viewer.wait_frames(20)
        assert "H264" in viewer.response.text
        assert "VP8" not in viewer.response.text
        session = server.service._peers.sessions[viewer.location.rsplit("/", 1)[1]]
        sender = session.pc.getSenders()[0]
        assert isinstance(sender._RTCRtpSender__encoder, SharedH264Packer)
        await viewer.close()
        await host.close()


async def test_opus_audio_is_relayed() -> None:
    async with running_server() as server:
        host = await publish(server.http, PatternTrack(), audio=AudioStreamTrack())
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewer = await play(server.http, audio=True)
        assert "opus/48000/2" in viewer.response.text
        audio = next(t.receiver.track for t in viewer.pc.getTransceivers() if t.kind == "audio")
        async with asyncio.timeout(5):
            frames = [await audio.recv() for _ in range(10)]
        assert all(frame.sample_rate == 48000 for frame in frames)
        assert frames[-1].pts > frames[0].pts
        await viewer.close()
        await host.close()


async def test_late_joiner_starts_at_once_with_the_cached_keyframe() -> None:
    # A 10 s keyframe interval, and keyframe requests ignored (like OBS).
    async with running_server() as server:
        track = EncodedPatternTrack("vp8", gop=300)
        host = await publish(server.http, track)
        await server.gate.wait_state("show1", VideoState.LIVE)
        await wait_index(track, 45)  # 1.5 s into the group of pictures
        joined = time.monotonic()
        viewer = await play(server.http)
        await viewer.wait_frames(30, within=5)
        first_index, first_at = viewer.frames[0]
        assert first_index == 0  # the keyframe that opened the group of pictures
        assert first_at - joined < 1.0
        indexes = [i for i, _ in viewer.frames]
        assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
        await viewer.close()
        await host.close()


async def test_viewer_keyframe_requests_reach_the_host_throttled() -> None:
    async with running_server(keyframe_request_interval_s=1.0) as server:
        host = await publish(server.http, PatternTrack())
        sender = host.pc.getSenders()[0]
        requests: list[float] = []
        original = sender._send_keyframe

        def counted() -> None:
            requests.append(time.monotonic())
            original()

        sender._send_keyframe = counted
        await server.gate.wait_state("show1", VideoState.LIVE)
        await asyncio.sleep(0.3)
        viewers = [await play(server.http) for _ in range(3)]
        for viewer in viewers:
            await viewer.wait_frames(5)
        await asyncio.sleep(0.5)
        assert 1 <= len(requests) <= 2
        gaps = [b - a for a, b in itertools.pairwise(requests)]
        assert all(gap >= 0.9 for gap in gaps)
        for viewer in viewers:
            await viewer.close()
        await host.close()


async def test_viewer_before_live_gets_video_when_the_host_starts() -> None:
    async with running_server() as server:
        viewer = await play(server.http)
        await asyncio.sleep(0.5)
        assert viewer.frames == []
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=300))
        await viewer.wait_frames(10)
        assert viewer.frames[0][0] == 0
        await viewer.close()
        await host.close()


async def test_viewer_of_another_codec_is_ended_when_the_host_starts() -> None:
    async with running_server() as server:
        viewer = await play(server.http)  # negotiates VP8: no host yet
        host = await publish(server.http, EncodedPatternTrack("h264", gop=30), codec="h264")
        async with asyncio.timeout(5):
            while server.service.stats()["viewers"]:  # noqa: ASYNC110 - polls service stats
                await asyncio.sleep(0.05)
        again = await play(server.http)
        assert "H264" in again.response.text
        await again.wait_frames(5)
        for client in (viewer, again, host):
            await client.close()


async def test_host_reconnect_resumes_for_viewers() -> None:
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("vp8", gop=60))
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewer = await play(server.http)
        await viewer.wait_frames(10)
        await host.pc.close()  # the host's connection drops without a DELETE
        await server.gate.wait_state("show1", VideoState.RECONNECTING)
        assert server.service.stats()["publishers"] == 0
        await asyncio.sleep(0.3)
        before = len(viewer.frames)
        again = await publish(server.http, EncodedPatternTrack("vp8", gop=60))
        await server.gate.wait_state("show1", VideoState.LIVE)
        await viewer.wait_frames(before + 20)
        # aiortc's jitter buffer hands a frame over when the next one starts, so the old
        # stream's last frame may come after ``before``; then the new stream from its keyframe.
        resumed = [i for i, _ in viewer.frames[before:]]
        assert resumed[resumed.index(0) :] == list(range(len(resumed) - resumed.index(0)))
        assert resumed.index(0) <= 1
        states = [s for show, s in server.gate.states if show == "show1"]
        assert states == [VideoState.LIVE, VideoState.RECONNECTING, VideoState.LIVE]
        response = await end(server.http, again)
        assert response.status_code == 200
        await server.gate.wait_state("show1", VideoState.PAUSED)  # the host hung up
        await viewer.close()
        await again.close()


async def test_same_host_takes_over_and_another_gets_409() -> None:
    async with running_server() as server:
        first = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        await server.gate.wait_state("show1", VideoState.LIVE)
        viewer = await play(server.http)
        await viewer.wait_frames(5)

        other = await offer_whip(server.http, "host:show1:phone")
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "publisher_conflict"

        second = await publish(server.http, EncodedPatternTrack("vp8", gop=30))
        assert second.location != first.location
        before = len(viewer.frames)
        await viewer.wait_frames(before + 15)
        stats = server.service.stats()
        assert stats["publishers"] == 1
        assert stats["peer_connections"] == 2  # the first host's peer was closed
        gone = await end(server.http, first)
        assert gone.status_code == 404
        for client in (viewer, first, second):
            await client.close()


async def test_a_viewer_without_the_hosts_codec_gets_unsupported_codec() -> None:
    async with running_server() as server:
        host = await publish(server.http, EncodedPatternTrack("h264", gop=30), codec="h264")
        await server.gate.wait_state("show1", VideoState.LIVE)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        prefer(pc.addTransceiver("video", direction="recvonly"), "vp8")
        response = await _exchange(server.http, pc, "/whep/show1", "viewer:show1")
        await pc.close()
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "unsupported_codec"
        assert error["message"].startswith("The show's video is H.264 (profile-level-id 42")
        assert server.service.stats()["viewers"] == 0
        viewer = await play(server.http)  # one that offers it still plays
        await viewer.wait_frames(5)
        await viewer.close()
        await host.close()
