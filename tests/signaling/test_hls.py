"""HLS packaging of a relay's H.264 and Opus into fMP4 segments in real Redis, and the
/hls routes that serve them."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from typing import Any

import av
import httpx
import pytest
import redis.asyncio as aioredis
from aiortc.mediastreams import AudioStreamTrack
from starlette.applications import Starlette

from benches.processes import free_port
from benches.synthetic import EncodedPatternTrack, read_index
from signaling import VideoState, fmp4
from signaling.hls import (
    IMMUTABLE,
    PLAYLIST_CACHE,
    HlsOrigin,
    HlsPackager,
    Segment,
    key,
    program_date_time,
)
from signaling.relay import ShowRelay

from .support import publish, running_server

START = 1_800_000_000.0  # the fake wall clock at the first frame
FPS = 30
AUDIO_TB = Fraction(1, 48000)


def _silence() -> bytes:
    encoder: Any = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.time_base = AUDIO_TB
    packets: list[Any] = []
    pts = 0
    while not packets:
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts, frame.time_base = 48000, pts, AUDIO_TB
        packets = list(encoder.encode(frame))
        pts += 960
    return bytes(packets[0])


SILENCE = _silence()


class Feed:
    """Publisher sessions pushing synthetic H.264 and 20 ms Opus packets into a relay on
    a fake wall clock (one frame, 1/30 s, a step)."""

    def __init__(self, relay: ShowRelay) -> None:
        self.relay = relay
        self.now = START
        self.away = 0.0  # seconds the host was away, in all
        self.frames = 0
        self.keyframe_requests = 0
        self._epoch: object = None
        self._track: EncodedPatternTrack | None = None
        self._index = 0
        self._audio = 0
        self.pts_base = 777_000  # (an RTP-like origin)

    def clock(self) -> float:
        return self.now

    async def _request(self) -> None:
        self.keyframe_requests += 1

    def attach(self, codec: str = "h264", gop: int = 15, width: int = 320) -> None:
        self._epoch = object()
        self.relay.attach_source(self._epoch, f"video/{codec}", None, self._request)
        self._track = EncodedPatternTrack(codec, width=width, height=width * 3 // 4, gop=gop)
        self._index = 0
        self._audio = 12345  # (audio and video timestamps have unrelated origins)

    def detach(self) -> None:
        self.relay.detach_source(self._epoch)

    async def run(self, frames: int, with_audio: bool = True) -> None:
        assert self._track is not None
        for _ in range(frames):
            for packet in self._track._encode(self._index):
                packet.pts += self.pts_base
                self.relay.push(self._epoch, "video", packet)
            self._index += 1
            self.frames += 1
            while with_audio and self._audio - 12345 < self._index * 1600:
                audio = av.Packet(SILENCE)
                audio.pts, audio.time_base = self._audio, AUDIO_TB
                self.relay.push(self._epoch, "audio", audio)
                self._audio += 960
            self.now = START + self.away + self.frames / FPS
            await asyncio.sleep(0)  # (the relay's keyframe requests run)


@pytest.fixture
async def origin(redis_client: aioredis.Redis) -> AsyncIterator[HlsOrigin]:
    hls = HlsOrigin()
    hls.start(redis_client)
    yield hls
    await hls.close()


@pytest.fixture
async def http(origin: HlsOrigin) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=Starlette(routes=origin.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://origin") as client:
        yield client


def feed_for(origin: HlsOrigin, codec: str = "h264", gop: int = 15) -> Feed:
    relay = ShowRelay("show1", viewer_queue_frames=120, keyframe_request_interval_s=0.0)
    feed = Feed(relay)
    origin._clock = feed.clock
    feed.attach(codec, gop)
    origin.publisher_attached(relay)
    return feed


async def written(origin: HlsOrigin, count: int) -> None:
    writer = origin._packagers["show1"][1]
    deadline = time.monotonic() + 10
    while writer.written < count:
        assert time.monotonic() < deadline, f"{writer.written} of {count} segments written"
        await asyncio.sleep(0.01)


def tags(playlist: str, name: str) -> list[str]:
    return [line.partition(":")[2] for line in playlist.splitlines() if line.startswith(name)]


def decode(*parts: bytes) -> tuple[list[int], list[float], int]:
    """Frame indexes and times (s) of the video, and the number of audio frames."""
    with av.open(io.BytesIO(b"".join(parts)), "r") as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
        frames = list(container.decode(video=0))
    with av.open(io.BytesIO(b"".join(parts)), "r") as container:
        audio = sum(1 for _ in container.decode(audio=0))
    return [read_index(f) for f in frames], [float(f.time) for f in frames], audio


async def test_segments_playlist_and_headers(origin: HlsOrigin, http: httpx.AsyncClient) -> None:
    feed = feed_for(origin, gop=15)  # a keyframe each 0.5 s: two per 1 s segment
    await feed.run(13 * FPS + 1)
    await written(origin, 13)
    reply = await http.get("/hls/show1/index.m3u8")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert reply.headers["cache-control"] == PLAYLIST_CACHE == "public, max-age=1"
    assert reply.headers["access-control-allow-origin"] == "*"
    text = reply.text
    lines = text.splitlines()
    assert lines[:3] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:1"]
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in lines and "#EXT-X-ENDLIST" not in lines
    uris = [line for line in lines if line.endswith(".m4s")]
    sequences = [int(uri.removesuffix(".m4s")) for uri in uris]
    first = int(tags(text, "#EXT-X-MEDIA-SEQUENCE")[0])
    assert sequences == list(range(first, first + 6))  # the sliding window
    (init_uri,) = tags(text, "#EXT-X-MAP")
    base = first - 7  # the show's first segment, which the init segment came with
    assert init_uri == f'URI="init-{base}.mp4"'
    assert tags(text, "#EXTINF") == ["1.000,"] * 6
    assert tags(text, "#EXT-X-PROGRAM-DATE-TIME") == [
        program_date_time(START + n) for n in range(7, 13)
    ]
    assert program_date_time(START + 7) == "2027-01-15T08:00:07.000Z"

    init = await http.get(f"/hls/show1/init-{base}.mp4")
    assert init.status_code == 200 and init.headers["content-type"] == "video/mp4"
    assert init.headers["cache-control"] == IMMUTABLE
    segments = []
    for uri in uris:
        segment = await http.get(f"/hls/show1/{uri}")
        assert segment.status_code == 200
        assert segment.headers["content-type"] == "video/iso.segment"
        assert segment.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert segment.headers["access-control-allow-origin"] == "*"
        segments.append(segment.content)
    indexes, times, audio = decode(init.content, *segments)
    assert indexes == list(range(7 * FPS, 13 * FPS))
    assert times[0] == pytest.approx(7.0)
    assert audio == 6 * 50  # 20 ms packets
    # One segment alone decodes with the init segment (each starts at a keyframe).
    assert decode(init.content, segments[-1])[0] == list(range(12 * FPS, 13 * FPS))
    # Ten segments are kept (a few past the window); older ones are gone: 404.
    assert (await http.get(f"/hls/show1/{first - 4}.m4s")).status_code == 200
    expired = await http.get(f"/hls/show1/{first - 5}.m4s")
    assert expired.status_code == 404
    assert expired.json()["error"]["code"] == "hls_not_available"
    assert 0 < await origin_ttl(origin, key("show1", f"segment:{first}")) <= 60
    assert origin.requests == {"playlist": 1, "init": 1, "segment": 8}


async def origin_ttl(origin: HlsOrigin, name: str) -> int:
    assert origin.redis is not None
    return int(await origin.redis.ttl(name))


async def test_a_show_without_hls_is_a_coded_404(http: httpx.AsyncClient) -> None:
    for path in ("/hls/nope/index.m3u8", "/hls/nope/init-1.mp4", "/hls/nope/5.m4s"):
        reply = await http.get(path)
        assert reply.status_code == 404, path
        assert reply.headers["access-control-allow-origin"] == "*"
        error = reply.json()["error"]
        assert error["code"] == "hls_not_available" and error["message"]


async def test_long_gops_ask_for_keyframes_and_set_the_target(
    origin: HlsOrigin, http: httpx.AsyncClient
) -> None:
    feed = feed_for(origin, gop=90)  # a host that sends a keyframe each 3 s (and ignores asks)
    await feed.run(3 * 90 + 1)
    await written(origin, 3)
    # Asked once per second without a keyframe: at 1 s and 2 s of each 3 s group.
    assert feed.keyframe_requests == 6
    text = (await http.get("/hls/show1/index.m3u8")).text
    assert tags(text, "#EXT-X-TARGETDURATION") == ["3"]
    assert tags(text, "#EXTINF") == ["3.000,"] * 3


async def test_a_reconnect_is_a_discontinuity_with_a_new_init(
    origin: HlsOrigin, http: httpx.AsyncClient
) -> None:
    feed = feed_for(origin, gop=15)
    await feed.run(2 * FPS + 1)
    feed.detach()  # the open segment (one frame) is written too
    feed.away = 5.0  # the host is away 5 s
    feed.now += feed.away
    feed.attach("h264", gop=15)  # same size: the same SPS/PPS, the same init segment
    await feed.run(FPS + 1)
    feed.detach()
    feed.attach("h264", gop=15, width=160)  # a new size: new SPS/PPS
    await feed.run(FPS + 1)
    await written(origin, 6)
    origin.video_state_changed("show1", VideoState.OFFLINE)  # its open segment is written
    assert origin.packager("show1") is None
    await asyncio.gather(*origin._finishing)
    text = (await http.get("/hls/show1/index.m3u8")).text
    lines = text.splitlines()
    assert lines[-1] == "#EXT-X-ENDLIST"
    maps = tags(text, "#EXT-X-MAP")
    assert len(maps) == 2 and maps[0] != maps[1]
    assert text.count("#EXT-X-DISCONTINUITY\n") == 2
    # Each segment's tags: the one after the first reconnect keeps its init segment, the
    # one after the second carries a new one.
    blocks = text.split("#EXTINF")
    after_first = next(b for b in blocks if "#EXT-X-DISCONTINUITY\n" in b)
    assert "#EXT-X-MAP" not in after_first
    assert program_date_time(START + 2 + 1 / FPS + 5) in after_first
    uris = [line for line in lines if line.endswith(".m4s")]
    first_init = (await http.get(f"/hls/show1/{maps[0][5:-1]}")).content
    second_init = (await http.get(f"/hls/show1/{maps[1][5:-1]}")).content
    last_map = lines.index(f"#EXT-X-MAP:{maps[1]}")
    before = [u for u in uris if lines.index(u) < last_map]
    after = [u for u in uris if lines.index(u) > last_map]
    old = [(await http.get(f"/hls/show1/{u}")).content for u in before]
    new = [(await http.get(f"/hls/show1/{u}")).content for u in after]
    old_indexes, old_times, _ = decode(first_init, *old)
    new_indexes, new_times, _ = decode(second_init, *new)
    assert old_indexes == [*range(FPS, 2 * FPS + 1), *range(FPS + 1)]
    assert new_indexes == list(range(FPS + 1))
    # Timestamps keep rising across the reconnects (the relay's timeline).
    assert old_times == sorted(old_times)
    assert new_times[0] > old_times[-1]
    # A 160x120 picture after the 320x240 one.
    with av.open(io.BytesIO(second_init + new[0])) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (160, 120)


async def test_a_vp8_host_is_not_packaged(origin: HlsOrigin, http: httpx.AsyncClient) -> None:
    feed = feed_for(origin, codec="vp8")
    await feed.run(2 * FPS)
    assert origin.packager("show1") is None and feed.relay.tap_count == 0
    reply = await http.get("/hls/show1/index.m3u8")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "hls_not_available"


async def test_a_host_without_audio_is_video_only_and_a_vp8_host_ends_the_playlist(
    origin: HlsOrigin, http: httpx.AsyncClient
) -> None:
    feed = feed_for(origin, gop=15)
    await feed.run(3 * FPS + 1, with_audio=False)  # (OBS without an audio source)
    await written(origin, 2)
    playlist = (await http.get("/hls/show1/index.m3u8")).text
    init_uri = tags(playlist, "#EXT-X-MAP")[0].split('"')[1]
    first = next(line for line in playlist.splitlines() if line.endswith(".m4s"))
    init = (await http.get(f"/hls/show1/{init_uri}")).content
    segment = (await http.get(f"/hls/show1/{first}")).content
    with av.open(io.BytesIO(init + segment), "r") as container:
        # no audio track: a declared one without samples would stall the players
        assert [s.type for s in container.streams] == ["video"]
        assert len(list(container.decode(video=0))) >= FPS
    # the host comes back with audio: a new init declares it, behind a discontinuity
    feed.detach()
    feed.attach("h264", gop=15)
    origin.publisher_attached(feed.relay)
    await feed.run(3 * FPS + 1)
    await written(origin, 4)
    playlist = (await http.get("/hls/show1/index.m3u8")).text
    maps = tags(playlist, "#EXT-X-MAP")
    assert len(maps) == 2 and "#EXT-X-DISCONTINUITY" in playlist.splitlines()
    second_uri = maps[1].split('"')[1]
    init = (await http.get(f"/hls/show1/{second_uri}")).content
    last = [line for line in playlist.splitlines() if line.endswith(".m4s")][-1]
    segment = (await http.get(f"/hls/show1/{last}")).content
    assert decode(init, segment)[2] > 0  # audio frames
    # a VP8 host then: WebRTC only, the HLS playlist ends
    feed.detach()
    feed.attach("vp8")
    origin.publisher_attached(feed.relay)
    await feed.run(FPS)
    for _ in range(100):
        playlist = (await http.get("/hls/show1/index.m3u8")).text
        if "#EXT-X-ENDLIST" in playlist:
            break
        await asyncio.sleep(0.02)
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
    assert origin.packager("show1") is None


async def test_without_redis_hls_is_off() -> None:
    hls = HlsOrigin()
    feed = Feed(ShowRelay("show1", 120, 0.0))
    feed.attach("h264")
    hls.publisher_attached(feed.relay)
    assert hls.packager("show1") is None and feed.relay.tap_count == 0
    await hls.close()


async def test_a_redis_failure_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    hls = HlsOrigin()
    hls.start(aioredis.Redis(port=free_port(), decode_responses=True))
    feed = Feed(ShowRelay("show1", 120, 0.0))
    hls._clock = feed.clock
    feed.attach("h264")
    hls.publisher_attached(feed.relay)
    await feed.run(2 * FPS + 1)  # the relay goes on
    deadline = time.monotonic() + 10
    while "writing to Redis failed" not in caplog.text:
        assert time.monotonic() < deadline, "no failure logged"
        await asyncio.sleep(0.05)
    assert hls._packagers["show1"][1].written == 0
    await hls.close()


def test_sps_size_with_cropping() -> None:
    track = EncodedPatternTrack("h264", width=640, height=360)
    (keyframe,) = track._encode(0)
    sps, pps = fmp4.parameter_sets(bytes(keyframe))
    assert sps is not None and pps is not None
    info = fmp4.parse_sps(sps)
    assert (info.width, info.height, info.profile) == (640, 360, 66)
    assert fmp4.opus_duration(SILENCE) == 960


async def test_a_whip_host_is_packaged_and_its_end_ends_the_playlist(
    redis_client: aioredis.Redis,
) -> None:
    async with running_server() as server:
        server.service.start(redis_client)
        hls = Starlette(routes=server.service.hls_routes())
        transport = httpx.ASGITransport(app=hls)
        async with httpx.AsyncClient(transport=transport, base_url="http://origin") as http:
            track = EncodedPatternTrack("h264", gop=15)
            host = await publish(server.http, track, codec="h264", audio=AudioStreamTrack())
            await server.gate.wait_state("show1", VideoState.LIVE)
            text = await playlist_where(http, lambda t: len(tags(t, "#EXTINF")) >= 2, 15)
            (init_uri,) = tags(text, "#EXT-X-MAP")
            init = (await http.get(f"/hls/show1/{init_uri[5:-1]}")).content
            uris = [line for line in text.splitlines() if line.endswith(".m4s")]
            segments = [(await http.get(f"/hls/show1/{uri}")).content for uri in uris]
            indexes, _, audio = decode(init, *segments)
            assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
            assert len(indexes) >= 30 and audio > 0
            await server.service.end_show("show1")  # offline: #EXT-X-ENDLIST
            await host.close()
            await playlist_where(http, lambda t: t.endswith("#EXT-X-ENDLIST\n"), 5)


async def playlist_where(
    http: httpx.AsyncClient, wanted: Callable[[str], bool], timeout_s: float
) -> str:
    """The show's playlist once it answers 200 and ``wanted`` holds of its text."""
    async with asyncio.timeout(timeout_s):
        while True:
            reply = await http.get("/hls/show1/index.m3u8")
            if reply.status_code == 200 and wanted(reply.text):
                return reply.text
            await asyncio.sleep(0.1)  # (polls the origin, as a player does)


async def test_the_app_serves_hls_and_counts_requests(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    assert app.state.parts.video.hls.redis is not None  # (started with the app's Redis)
    reply = await client.get("/hls/show1/index.m3u8")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "hls_not_available"
    assert reply.headers["access-control-allow-origin"] == "*"
    assert (await client.get("/hls/show1/7.m4s")).status_code == 404
    metrics = (await client.get("/metrics")).text
    assert 'liveshop_hls_requests_total{kind="playlist"} 1.0' in metrics
    assert 'liveshop_hls_requests_total{kind="segment"} 1.0' in metrics
    assert 'liveshop_hls_requests_total{kind="init"} 0.0' in metrics


async def test_a_new_size_within_a_session_gets_a_new_init(
    origin: HlsOrigin, http: httpx.AsyncClient
) -> None:
    feed = feed_for(origin, gop=15)
    await feed.run(FPS + 1)
    feed._track = EncodedPatternTrack("h264", width=160, height=120, gop=15)  # (browsers do)
    feed._index = 0
    feed.pts_base += (FPS + 1) * 3000  # (the same session: its timestamps go on)
    await feed.run(FPS + 1)
    await written(origin, 3)
    text = (await http.get("/hls/show1/index.m3u8")).text
    maps = tags(text, "#EXT-X-MAP")
    assert len(maps) == 2 and text.count("#EXT-X-DISCONTINUITY\n") == 1
    # The segment open at the change ends there (one frame), before the new picture.
    assert tags(text, "#EXTINF") == ["1.000,", "0.033,", "1.000,"]
    init = (await http.get(f"/hls/show1/{maps[1][5:-1]}")).content
    last = (await http.get(f"/hls/show1/{text.splitlines()[-1]}")).content
    assert decode(init, last)[0] == list(range(FPS))


async def test_another_process_taking_the_show_ends_nothing(
    origin: HlsOrigin, http: httpx.AsyncClient
) -> None:
    feed = feed_for(origin, gop=15)
    await feed.run(FPS + 1)
    await written(origin, 1)
    origin.forget("show1")  # (placement moved the show: its new origin goes on)
    await asyncio.gather(*origin._finishing)
    assert origin.packager("show1") is None and feed.relay.tap_count == 0
    text = (await http.get("/hls/show1/index.m3u8")).text
    assert tags(text, "#EXTINF") == ["1.000,", "0.033,"] and "#EXT-X-ENDLIST" not in text


async def test_a_segment_redis_could_not_take_is_followed_by_a_discontinuity() -> None:
    taken: list[Segment] = []
    refuse = [False]

    def write(segment: Segment) -> bool:
        if refuse[0]:
            return False
        taken.append(segment)
        return True

    feed = Feed(ShowRelay("show1", 120, 0.0))
    feed.attach("h264")
    packager = HlsPackager(feed.relay, write, feed.clock)
    feed.relay.add_tap(packager)
    await feed.run(FPS + 1)
    refuse[0] = True
    await feed.run(FPS)
    refuse[0] = False
    await feed.run(FPS)
    assert [(s.init is not None, s.discontinuity) for s in taken] == [(True, False), (False, True)]
    assert packager.segments == 2
