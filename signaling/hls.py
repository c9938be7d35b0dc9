"""HLS for the crowd: the origin relay's H.264 and Opus packaged, without transcoding, into
fMP4 (CMAF) segments and a live media playlist kept in Redis, which every process serves.

``HlsPackager`` is a ``RelayTap`` on a show's origin relay: it cuts one segment at the
first video keyframe past ``TARGET_S`` (so a segment holds one or more whole groups of
pictures) and asks the host for a keyframe when none came for ``TARGET_S``. A writer task
(``_Writer``) numbers the segments, keeps the playlist's sliding window, and writes each
segment, its init segment and the playlist in one Redis transaction. ``HlsOrigin`` owns the
packagers of a process and serves ``/hls/...`` from Redis (README "HLS").
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import fmp4
from .access import VideoState
from .errors import SignalingError
from .http import with_errors
from .media import EncodedFrame
from .relay import ShowRelay

logger = logging.getLogger(__name__)

H264 = "video/h264"
TARGET_S = 1.0  # a segment is cut at the first keyframe this far past its start
PLAYLIST_SEGMENTS = 6  # the playlist's sliding window
KEPT_SEGMENTS = 10  # segments kept in Redis (the window and a few a slow player may want)
SEGMENT_TTL_S = 60
NEXT_TTL_S = 24 * 3600
MAX_SEGMENT_BYTES = 16 * 1024 * 1024
MAX_SEGMENT_FRAMES = 1800
WRITE_QUEUE = 16  # segments waiting for Redis; past it a segment is dropped (logged)
CLOSE_WAIT_S = 2.0
KEY = "liveshop:hls:{show_id}:"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
IMMUTABLE = "public, max-age=31536000, immutable"
PLAYLIST_CACHE = "public, max-age=1"


def key(show_id: str, name: str) -> str:
    """``liveshop:hls:{show_id}:{name}``: ``playlist``, ``init:{n}``, ``segment:{n}``, ``next``."""
    return KEY.format(show_id=show_id) + name


@dataclass(frozen=True, slots=True)
class Segment:
    """A packaged segment on its way to Redis (numbered by the writer)."""

    video: list[fmp4.Sample]
    audio: list[fmp4.Sample]
    duration_s: float
    program_date: float  # wall clock (UNIX s) when its first frame reached the origin
    init: bytes | None  # a new init segment this one needs (after a new SPS/PPS)
    discontinuity: bool


@dataclass(slots=True)
class _Open:
    start: int
    program_date: float
    video: list[tuple[bytes, int, bool]] = field(default_factory=list)
    audio: list[tuple[bytes, int]] = field(default_factory=list)
    size: int = 0


_END = object()


class HlsPackager:
    """Taps a show's relay; makes segments of its H.264 video and Opus audio."""

    def __init__(
        self,
        relay: ShowRelay,
        write: Callable[[Segment], bool],
        clock: Callable[[], float] = time.time,
        target_s: float = TARGET_S,
    ) -> None:
        self.relay = relay
        self._write = write  # False: the segment was not taken (the queue is full)
        self._clock = clock
        self._target = round(target_s * fmp4.VIDEO_TIMESCALE)
        self._active = False
        self._params: tuple[bytes, bytes] | None = None
        self._init: bytes | None = None  # an init segment not yet handed to the writer
        self._discontinuity = False
        self._open: _Open | None = None
        self._origin: int | None = None  # the first keyframe's pts: media time 0
        self._last_video: int | None = None
        self._last_key = 0
        self._last_request = 0
        self._audio_shift: int | None = None
        self._last_audio = -1
        self._session_key: tuple[int, float] | None = None  # (media time, wall) of 1st keyframe
        self._audio_track = True  # whether the current init segment declares audio
        self._choose_tracks = True  # decided at each session's first segment
        self.segments = 0

    # -- RelayTap ------------------------------------------------------------------------

    def source_attached(self, video_mime: str, video_codec: Any, gop: list[EncodedFrame]) -> None:
        self._flush()
        self._active = video_mime == H264
        self._discontinuity = self._discontinuity or self.segments > 0
        self._audio_shift = None
        self._session_key = None
        self._choose_tracks = True
        for frame in gop:
            self.frame("video", frame)

    def source_detached(self) -> None:
        self._flush()
        self._active = False

    def frame(self, kind: str, frame: EncodedFrame) -> None:
        if not self._active or frame.packet.pts is None:
            return
        if kind == "video":
            self._video(bytes(frame.packet), frame.packet.pts, frame.keyframe)
        else:
            self._audio(bytes(frame.packet), frame.packet.pts)

    # -- packaging -----------------------------------------------------------------------

    def _video(self, data: bytes, pts: int, keyframe: bool) -> None:
        if self._last_video is not None and pts <= self._last_video:
            return  # (timestamps must rise)
        if keyframe:
            sps, pps = fmp4.parameter_sets(data)
            params = (sps, pps) if sps is not None and pps is not None else self._params
            if params is None:
                return  # cannot start a segment without its parameter sets
            opened = self._open
            changed = params != self._params
            if opened is not None and (changed or pts - opened.start >= self._target):
                self._cut(pts)
            if changed:
                try:
                    self._init = fmp4.init_segment(*params)
                except (ValueError, IndexError):
                    logger.warning("HLS %s: unreadable SPS; no segment", self.relay.show_id)
                    self._open = None
                    return
                self._params = params
                self._discontinuity = self._discontinuity or self.segments > 0
            if self._origin is None:
                self._origin = pts
            if self._open is None:
                self._open = _Open(pts, self._clock())
            if self._session_key is None:
                self._session_key = (pts - self._origin, self._clock())
            self._last_key = self._last_request = pts
        elif self._open is None:
            return
        elif pts - max(self._last_key, self._last_request) >= self._target:
            self._last_request = pts
            self.relay.request_keyframe()  # (a browser host sends keyframes on request)
        opened = self._open
        assert opened is not None
        self._last_video = pts
        sample = fmp4.length_prefixed(data)
        opened.video.append((sample, pts, keyframe))
        opened.size += len(sample)
        if opened.size > MAX_SEGMENT_BYTES or len(opened.video) > MAX_SEGMENT_FRAMES:
            logger.warning("HLS %s: no keyframe for too long; segment dropped", self.relay.show_id)
            self._open = None
            self._discontinuity = True

    def _audio(self, data: bytes, pts: int) -> None:
        opened = self._open
        if opened is None or self._session_key is None or self._origin is None:
            return
        if self._audio_shift is None:
            # Audio and video timestamps have unrelated origins: the first audio packet
            # of a session is placed by when it came, against the session's first keyframe.
            key_time, key_wall = self._session_key
            at = (key_time * fmp4.AUDIO_TIMESCALE) // fmp4.VIDEO_TIMESCALE
            at += round((self._clock() - key_wall) * fmp4.AUDIO_TIMESCALE)
            self._audio_shift = max(at, self._last_audio + 1) - pts
        out = pts + self._audio_shift
        if out <= self._last_audio:
            return
        self._last_audio = out
        opened.audio.append((data, out))
        opened.size += len(data)

    def _cut(self, next_pts: int | None) -> None:
        """The open segment ends where ``next_pts`` starts (None: after its last frame)."""
        opened, self._open = self._open, None
        if opened is None or not opened.video:
            return
        assert self._origin is not None
        times = [pts for _, pts, _ in opened.video]
        step = times[-1] - times[-2] if len(times) > 1 else 3000
        ends = [*times[1:], next_pts if next_pts is not None else times[-1] + step]
        video = [
            fmp4.Sample(data, pts - self._origin, max(1, end - pts), key)
            for (data, pts, key), end in zip(opened.video, ends, strict=True)
        ]
        if self._choose_tracks and self._params is not None:
            # A host that sends no audio (OBS without a source, a studio without a
            # microphone) gets an init segment without an audio track: a declared track
            # with no samples would stall the players. Decided at each session's first
            # segment; a session whose audio starts later stays video only.
            self._choose_tracks = False
            with_audio = bool(opened.audio)
            if with_audio != self._audio_track or self._init is not None:
                self._init = fmp4.init_segment(*self._params, audio=with_audio)
                self._audio_track = with_audio
        audio = [
            fmp4.Sample(data, at, fmp4.opus_duration(data) or 960)
            for data, at in opened.audio
            if self._audio_track
        ]
        segment = Segment(
            video,
            audio,
            (ends[-1] - times[0]) / fmp4.VIDEO_TIMESCALE,
            opened.program_date,
            self._init,
            self._discontinuity,
        )
        if self._write(segment):
            self._init = None
            self._discontinuity = False
            self.segments += 1
        else:
            logger.warning("HLS %s: Redis is behind; segment dropped", self.relay.show_id)
            self._discontinuity = True

    def _flush(self) -> None:
        self._cut(None)


@dataclass
class _Entry:
    sequence: int
    duration_s: float
    program_date: float
    init: int
    discontinuity: bool


class _Writer:
    """Numbers a packager's segments and writes them, with the playlist, to Redis."""

    def __init__(self, redis: aioredis.Redis, show_id: str) -> None:
        self._redis = redis
        self._show = show_id
        self._queue: asyncio.Queue[object] = asyncio.Queue(WRITE_QUEUE)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"hls-{show_id}")
        self._next: int | None = None
        self._init = 0
        self._window: deque[_Entry] = deque()
        self._discontinuities = 0
        self._target = 1
        self.written = 0

    def put(self, segment: Segment) -> bool:
        try:
            self._queue.put_nowait(segment)
        except asyncio.QueueFull:
            return False
        return True

    async def finish(self, endlist: bool) -> None:
        """Write what is queued (and ``#EXT-X-ENDLIST`` if ``endlist``), then stop; given up
        after ``CLOSE_WAIT_S``."""
        try:
            self._queue.put_nowait(_END if endlist else None)
        except asyncio.QueueFull:
            self._task.cancel()
        await asyncio.wait({self._task}, timeout=CLOSE_WAIT_S)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            try:
                if item is _END:
                    await self._end()
                    return
                assert isinstance(item, Segment)
                await self._store(item)
            except Exception:  # (Redis is down: the WebRTC relay goes on)
                logger.exception("HLS %s: writing to Redis failed", self._show)

    async def _first_sequence(self) -> int:
        # Never a number an earlier packager of the show used: its segments may sit in a
        # CDN's cache for a year under the same URL.
        stored = await self._redis.get(key(self._show, "next"))
        return max(int(stored or 0), int(time.time()))

    async def _store(self, segment: Segment) -> None:
        if self._next is None:
            self._next = await self._first_sequence()
        sequence = self._next
        self._next += 1
        if segment.init is not None:
            self._init = sequence
        entry = _Entry(
            sequence,
            segment.duration_s,
            segment.program_date,
            self._init,
            segment.discontinuity and bool(self._window),
        )
        self._window.append(entry)
        while len(self._window) > PLAYLIST_SEGMENTS:
            if self._window.popleft().discontinuity:
                self._discontinuities += 1
        # (EXTINF rounded half up must not exceed it, RFC 8216 4.3.3.1)
        self._target = max(self._target, math.floor(segment.duration_s + 0.5))
        data = fmp4.media_segment(sequence, segment.video, segment.audio)
        async with self._redis.pipeline(transaction=True) as pipe:
            if segment.init is not None:
                pipe.set(key(self._show, f"init:{sequence}"), segment.init, ex=SEGMENT_TTL_S)
            for init in {e.init for e in self._window}:
                pipe.expire(key(self._show, f"init:{init}"), SEGMENT_TTL_S)
            pipe.set(key(self._show, f"segment:{sequence}"), data, ex=SEGMENT_TTL_S)
            pipe.delete(key(self._show, f"segment:{sequence - KEPT_SEGMENTS}"))
            pipe.set(key(self._show, "playlist"), self.playlist(), ex=SEGMENT_TTL_S)
            pipe.set(key(self._show, "next"), sequence + 1, ex=NEXT_TTL_S)
            await pipe.execute()
        self.written += 1

    async def _end(self) -> None:
        if self._window:
            await self._redis.set(
                key(self._show, "playlist"), self.playlist(end=True), ex=SEGMENT_TTL_S
            )

    def playlist(self, end: bool = False) -> str:
        window = list(self._window)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{self._target}",
            f"#EXT-X-MEDIA-SEQUENCE:{window[0].sequence}",
            f"#EXT-X-DISCONTINUITY-SEQUENCE:{self._discontinuities}",
            "#EXT-X-INDEPENDENT-SEGMENTS",
        ]
        init = None
        for entry in window:
            if entry.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if entry.init != init:
                init = entry.init
                lines.append(f'#EXT-X-MAP:URI="init-{init}.mp4"')
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{program_date_time(entry.program_date)}")
            lines.append(f"#EXTINF:{entry.duration_s:.3f},")
            lines.append(f"{entry.sequence}.m4s")
        if end:
            lines.append("#EXT-X-ENDLIST")
        return "\n".join(lines) + "\n"


def program_date_time(unix_s: float) -> str:
    """ISO 8601 in UTC with milliseconds: ``2026-12-03T15:10:18.123Z``."""
    stamp = datetime.fromtimestamp(math.floor(unix_s * 1000) / 1000, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def binary_client(redis: aioredis.Redis) -> aioredis.Redis:
    """A client on the same server as ``redis`` that hands back bytes (the app's decodes)."""
    kwargs = dict(redis.connection_pool.connection_kwargs)
    kwargs["decode_responses"] = False
    pool = aioredis.BlockingConnectionPool(
        connection_class=redis.connection_pool.connection_class,
        max_connections=8,
        timeout=10,
        **kwargs,
    )
    return aioredis.Redis.from_pool(pool)


class HlsOrigin:
    """The HLS packagers of this process and the ``/hls`` routes (which read Redis, so
    every process serves every show). Off until ``start(redis)``, and when ``enabled`` is
    False."""

    def __init__(self, enabled: bool = True, clock: Callable[[], float] = time.time) -> None:
        self.enabled = enabled
        self._clock = clock
        self.redis: aioredis.Redis | None = None
        self._packagers: dict[str, tuple[HlsPackager, _Writer]] = {}
        self.requests: Counter[str] = Counter()  # by kind: playlist, init, segment
        self._finishing: set[asyncio.Task[None]] = set()

    def start(self, redis: aioredis.Redis) -> None:
        self.redis = binary_client(redis)

    def publisher_attached(self, relay: ShowRelay) -> None:
        """A publisher session feeds ``relay`` (the show's origin): packaged if H.264."""
        if not self.enabled or self.redis is None:
            return
        current = self._packagers.get(relay.show_id)
        if current is not None and current[0].relay is relay and relay.video_mime == H264:
            return  # (the tap was told of the new session)
        if relay.video_mime != H264:
            if current is not None:  # a VP8 host after an H.264 one: HLS ends with it
                self._drop(relay.show_id, endlist=True)
            return
        if current is not None:
            self._drop(relay.show_id, endlist=False)
        writer = _Writer(self.redis, relay.show_id)
        packager = HlsPackager(relay, writer.put, self._clock)
        self._packagers[relay.show_id] = (packager, writer)
        relay.add_tap(packager)

    async def playing(self, show_id: str) -> bool:
        """Whether ``show_id`` plays over HLS now, whichever process packages it: its
        playlist is in Redis and not ended."""
        if self.redis is None:
            return False
        playlist = await self.redis.get(key(show_id, "playlist"))
        return playlist is not None and b"#EXT-X-ENDLIST" not in playlist

    def packager(self, show_id: str) -> HlsPackager | None:
        current = self._packagers.get(show_id)
        return None if current is None else current[0]

    def video_state_changed(self, show_id: str, state: VideoState) -> None:
        if state is VideoState.OFFLINE:  # the show's video ended: #EXT-X-ENDLIST
            self._drop(show_id, endlist=True)

    def forget(self, show_id: str) -> None:
        """Another process serves the show now: stop packaging it here, ending nothing."""
        self._drop(show_id, endlist=False)

    def _drop(self, show_id: str, endlist: bool) -> asyncio.Task[None] | None:
        current = self._packagers.pop(show_id, None)
        if current is None:
            return None
        packager, writer = current
        packager.source_detached()  # (its open segment is queued)
        packager.relay.remove_tap(packager)
        task = asyncio.get_running_loop().create_task(writer.finish(endlist))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        return task

    async def close(self) -> None:
        for show_id in list(self._packagers):
            self._drop(show_id, endlist=False)
        await asyncio.gather(*list(self._finishing), return_exceptions=True)
        redis, self.redis = self.redis, None
        if redis is not None:
            await redis.aclose()

    # -- routes ------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/hls/{show_id}/index.m3u8", with_errors(self._playlist), methods=["GET"]),
            Route("/hls/{show_id}/init-{n:int}.mp4", with_errors(self._init), methods=["GET"]),
            Route("/hls/{show_id}/{n:int}.m4s", with_errors(self._segment), methods=["GET"]),
        ]

    async def _read(self, request: Request, kind: str, name: str) -> bytes:
        self.requests[kind] += 1
        show_id = request.path_params["show_id"]
        data = None if self.redis is None else await self.redis.get(key(show_id, name))
        if data is None:
            raise SignalingError(
                "hls_not_available",
                "This show has no HLS stream (not live, not H.264) or no such segment.",
            )
        assert isinstance(data, bytes)
        return data

    async def _playlist(self, request: Request) -> Response:
        data = await self._read(request, "playlist", "playlist")
        return Response(data, media_type=PLAYLIST_TYPE, headers={"Cache-Control": PLAYLIST_CACHE})

    async def _init(self, request: Request) -> Response:
        data = await self._read(request, "init", f"init:{request.path_params['n']}")
        return Response(data, media_type="video/mp4", headers={"Cache-Control": IMMUTABLE})

    async def _segment(self, request: Request) -> Response:
        data = await self._read(request, "segment", f"segment:{request.path_params['n']}")
        return Response(data, media_type="video/iso.segment", headers={"Cache-Control": IMMUTABLE})
