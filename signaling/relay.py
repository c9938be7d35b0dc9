"""The pass-through relay of one show: the host's encoded frames fanned out to viewers.

Nothing is decoded or encoded here. The host's receiver hands over ``av.Packet[Any]`` s (see
``aiortc_hooks.receive_encoded``); each viewer's sender gets them from a ``RelayTrack``
and only packetizes them (``Encoder.pack``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .media import EncodedFrame, is_keyframe
from .viewer_queue import QueueClosed, ViewerQueue

logger = logging.getLogger(__name__)

# The cached group of pictures is dropped (new viewers then wait for the next keyframe)
# past these bounds.
GOP_MAX_FRAMES = 900
GOP_MAX_BYTES = 16 * 1024 * 1024
AUDIO_QUEUE_PACKETS = 100
# The host's keyframe interval is measured over this many keyframes, its bitrate over
# this window.
KEYFRAME_HISTORY = 4
RATE_WINDOW_S = 2.0
VIDEO_CLOCK_RATE = 90_000

# Viewers' senders woken per event-loop turn. Each sends its frame in one go (about 6 RTP
# packets, 30 us each), so waking all 150 at once made one 25 ms turn in which nothing
# else (the host's packets, other peers' handshakes) could run.
FANOUT_CHUNK = 20

# A viewer that is this far behind when the host sends a keyframe jumps to it (see
# ``ViewerQueue``); a viewer that cannot decode is started again at the cached keyframe at
# most once per ``REPRIME_MIN_S``.
JUMP_LAG_S = 0.3
REPRIME_MIN_S = 1.0

KeyframeRequester = Callable[[], Coroutine[Any, Any, None]]


class RelayTap(Protocol):
    """Something besides the viewers that takes every frame of a show's relay as it comes
    (an edge relay's feed, the HLS packager). Called on the event loop; must not block."""

    def source_attached(self, video_mime: str, video_codec: Any, gop: list[EncodedFrame]) -> None:
        """A publisher session feeds the relay (``gop``: the frames cached since its last
        keyframe, often none yet); its frames follow."""

    def frame(self, kind: str, frame: EncodedFrame) -> None:
        """One frame (video) or packet (audio), its timestamp on the relay's timeline."""

    def source_detached(self) -> None:
        """The publisher session stopped feeding the relay."""


def _wake_in_chunks(queues: list[ViewerQueue]) -> None:
    for queue in queues[:FANOUT_CHUNK]:
        queue.wake()
    if len(queues) > FANOUT_CHUNK:
        asyncio.get_running_loop().call_soon(_wake_in_chunks, queues[FANOUT_CHUNK:])


class RelayTrack(MediaStreamTrack):
    """A viewer's track. ``recv`` yields ``av.Packet[Any]`` s, so the sender never encodes."""

    def __init__(self, kind: str, queue: ViewerQueue) -> None:
        super().__init__()
        self.kind = kind
        self._queue = queue

    @property
    def waiting(self) -> int:
        """Frames queued for this viewer besides the one being sent (``ViewerTimeline``)."""
        return len(self._queue)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        if self._queue.backlogged:
            # The cached group of pictures is ready at once; without this the sender would
            # send all of it without giving the event loop (and other viewers) a turn.
            await asyncio.sleep(0)
        try:
            frame = await self._queue.get()
        except QueueClosed:
            self.stop()
            raise MediaStreamError from None
        return frame.packet

    def stop(self) -> None:
        super().stop()
        self._queue.close()


@dataclass(eq=False)
class RelayViewer:
    video: ViewerQueue
    audio: ViewerQueue
    video_mime: str | None
    wants_audio: bool = False

    def close(self) -> None:
        self.video.close()
        self.audio.close()


@dataclass
class _Timeline:
    """Keeps one kind's timestamps rising across publisher sessions."""

    step: int
    last: int | None = None
    offset: int = 0
    epoch: object = None

    def rebase(self, pts: int, epoch: object) -> int:
        if epoch is not self.epoch:
            self.epoch = epoch
            self.offset = 0 if self.last is None else self.last + self.step - pts
        out = pts + self.offset
        self.last = out
        return out


@dataclass(eq=False)
class ShowRelay:
    show_id: str
    viewer_queue_frames: int
    keyframe_request_interval_s: float
    video_mime: str | None = None
    video_codec: Any = None  # the RTCRtpCodecCapability the host sends
    packets_in: int = 0
    _viewers: set[RelayViewer] = field(default_factory=set)
    _gop: list[EncodedFrame] = field(default_factory=list)
    _gop_bytes: int = 0
    _requester: KeyframeRequester | None = None
    _epoch: object = None
    _last_request: float = float("-inf")
    _request_task: asyncio.Task[None] | None = None
    _video_timeline: _Timeline = field(default_factory=lambda: _Timeline(step=3000))
    _audio_timeline: _Timeline = field(default_factory=lambda: _Timeline(step=960))
    _keyframe_times: deque[float] = field(default_factory=lambda: deque(maxlen=KEYFRAME_HISTORY))
    _rate_window: deque[tuple[float, int]] = field(default_factory=deque)
    _rate_bytes: int = 0
    _taps: list[RelayTap] = field(default_factory=list)
    pinned: bool = False  # an edge's feed holds it (``feed.EdgeFeed``)

    def add_tap(self, tap: RelayTap) -> None:
        """``tap`` takes every frame from now on (told of the current source at once)."""
        self._taps.append(tap)
        if self._requester is not None and self.video_mime is not None:
            tap.source_attached(self.video_mime, self.video_codec, list(self._gop))

    def remove_tap(self, tap: RelayTap) -> None:
        with contextlib.suppress(ValueError):
            self._taps.remove(tap)

    @property
    def tap_count(self) -> int:
        return len(self._taps)

    @property
    def keyframe_interval_s(self) -> float | None:
        """The host's keyframe interval: the longest gap between the last few keyframes of
        this publisher session (keyframes it made on request shorten some gaps, not all);
        None before two keyframes."""
        times = self._keyframe_times
        if len(times) < 2:
            return None
        return max(b - a for a, b in zip(times, list(times)[1:], strict=False))

    @property
    def keyframe_gap_s(self) -> float | None:
        """``keyframe_interval_s`` with the gap still open counted too (so a long interval
        shows before its second keyframe); None before the session's first keyframe."""
        times = self._keyframe_times
        if not times:
            return None
        open_gap = time.monotonic() - times[-1]
        closed = self.keyframe_interval_s
        return open_gap if closed is None else max(closed, open_gap)

    @property
    def video_bitrate_bps(self) -> float:
        """The host's video bitrate over the last ``RATE_WINDOW_S`` seconds of its media
        time (frame timestamps, so that frames arriving in a burst do not inflate it); less
        than the truth while the session has sent less than that (never more: a first
        keyframe alone would look like a high rate)."""
        return self._rate_bytes * 8 / RATE_WINDOW_S

    def _measure(self, frame: EncodedFrame) -> None:
        if frame.keyframe:
            self._keyframe_times.append(time.monotonic())
        pts = frame.packet.pts
        if pts is None:
            return
        window = self._rate_window
        if window and pts <= window[-1][0]:
            window.clear()  # (a new publisher session: its own timeline)
            self._rate_bytes = 0
        window.append((pts, frame.size))
        self._rate_bytes += frame.size
        while window and pts - window[0][0] > RATE_WINDOW_S * VIDEO_CLOCK_RATE:
            self._rate_bytes -= window.popleft()[1]

    @property
    def viewer_count(self) -> int:
        return len(self._viewers)

    @property
    def has_source(self) -> bool:
        return self._requester is not None

    def attach_source(
        self, epoch: object, video_mime: str, video_codec: object, requester: KeyframeRequester
    ) -> None:
        """A publisher session starts feeding this relay; viewers restart at its keyframe."""
        self._epoch = epoch
        self._requester = requester
        self.video_mime = video_mime
        self.video_codec = video_codec
        self._gop.clear()
        self._gop_bytes = 0
        self._keyframe_times.clear()
        for viewer in self._viewers:
            viewer.video.restart()
        self._last_request = float("-inf")
        for tap in list(self._taps):
            tap.source_attached(video_mime, video_codec, [])

    def detach_source(self, epoch: object) -> None:
        if epoch is self._epoch:
            self._requester = None
            self._epoch = None
            for tap in list(self._taps):
                tap.source_detached()

    def push(self, epoch: object, kind: str, packet: av.Packet[Any]) -> None:
        """One encoded frame from the publisher, handed to every viewer without waiting."""
        if epoch is not self._epoch or packet.pts is None:
            return
        self.packets_in += 1
        data = bytes(packet)
        if kind == "video":
            packet.pts = self._video_timeline.rebase(packet.pts, epoch)
            assert self.video_mime is not None
            frame = EncodedFrame(packet, is_keyframe(self.video_mime, data), len(data))
            self._keep_gop(frame)
            self._measure(frame)
            for tap in self._taps:
                tap.frame(kind, frame)
            queued = [
                viewer.video
                for viewer in self._viewers
                if viewer.video_mime == self.video_mime and viewer.video.put(frame, wake=False)
            ]
            _wake_in_chunks(queued)
        else:
            packet.pts = self._audio_timeline.rebase(packet.pts, epoch)
            frame = EncodedFrame(packet, True, len(data))
            for tap in self._taps:
                tap.frame(kind, frame)
            queued = [
                viewer.audio
                for viewer in self._viewers
                if viewer.wants_audio and viewer.audio.put(frame, wake=False)
            ]
            _wake_in_chunks(queued)

    def _keep_gop(self, frame: EncodedFrame) -> None:
        if frame.keyframe:
            self._gop = [frame]
            self._gop_bytes = frame.size
        elif self._gop:
            self._gop_bytes += frame.size
            if len(self._gop) >= GOP_MAX_FRAMES or self._gop_bytes > GOP_MAX_BYTES:
                self._gop = []
                self._gop_bytes = 0
            else:
                self._gop.append(frame)

    def new_queue(self) -> ViewerQueue:
        return ViewerQueue(self.viewer_queue_frames, jump_lag_s=JUMP_LAG_S)

    def new_audio_queue(self) -> ViewerQueue:
        return ViewerQueue(AUDIO_QUEUE_PACKETS)

    def join(self, viewer: RelayViewer) -> None:
        """A connected viewer starts at once with the cached group of pictures."""
        if viewer.video_mime == self.video_mime:
            viewer.video.prime(self._gop)
        self._viewers.add(viewer)
        self.request_keyframe()

    def viewer_cannot_decode(self, viewer: RelayViewer) -> None:
        """A viewer asked for a keyframe (PLI, FIR) or for a packet too old to send again:
        it starts again at the cached keyframe (at most once per ``REPRIME_MIN_S``), and the
        host is asked for a keyframe too (throttled)."""
        queue = viewer.video
        if (
            viewer in self._viewers
            and viewer.video_mime == self.video_mime
            and time.monotonic() - queue.last_reprime >= REPRIME_MIN_S
        ):
            queue.reprime(self._gop)
        self.request_keyframe()

    def remove_viewer(self, viewer: RelayViewer) -> None:
        self._viewers.discard(viewer)
        viewer.close()

    def request_keyframe(self) -> None:
        """Ask the host for a keyframe, at most once per interval."""
        now = time.monotonic()
        if self._requester is None or now - self._last_request < self.keyframe_request_interval_s:
            return
        if self._request_task is not None and not self._request_task.done():
            return
        self._last_request = now
        self._request_task = asyncio.get_running_loop().create_task(self._requester())

    async def close(self) -> None:
        for viewer in list(self._viewers):
            self.remove_viewer(viewer)
        if self._requester is not None:
            for tap in list(self._taps):
                tap.source_detached()
        self._taps.clear()
        self._requester = None
        if self._request_task is not None:
            self._request_task.cancel()
            await asyncio.gather(self._request_task, return_exceptions=True)
            self._request_task = None

    def queue_stats(self) -> dict[str, int]:
        """Frames waiting, keyframe skips and jumps, frames dropped, re-primes and stalls,
        over this relay's viewers now."""
        stats = dict.fromkeys(("queued", "skips", "jumps", "dropped", "reprimes", "stalls"), 0)
        for viewer in self._viewers:
            video = viewer.video
            stats["queued"] += len(video)
            stats["skips"] += video.skips
            stats["jumps"] += video.jumps
            stats["dropped"] += video.dropped
            stats["reprimes"] += video.reprimes
            stats["stalls"] += video.stalls
        return stats

    @property
    def task_count(self) -> int:
        return int(self._request_task is not None and not self._request_task.done())
