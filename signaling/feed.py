"""The internal feed from a show's origin relay to its edge relays in other processes.

The origin (the process holding the host's connection) listens on one TCP port; an edge
connects, says which show it relays (with an HMAC of the show id under the app's secret)
and from then on gets every frame of the show as the origin's relay takes it: the codec
when a publisher session attaches, the frames cached since the last keyframe, then each
video frame and audio packet with its timestamp. The edge sends back keyframe requests
(its viewers' PLIs). Each frame is one length-prefixed message:

    length (4 bytes, big-endian) | type (1 byte) | body

    C  JSON {"mime", "codec": {mimeType, clockRate, channels, parameters}}: a source attached
    D  the source detached (the host left; the edge's viewers wait, as the origin's do)
    V  video: pts (int64) | sent (float64, the origin's wall clock) | frame bytes
    A  audio: the same
    K  (edge -> origin) a keyframe request

Why not WHEP between relays: an edge pulling the origin as a viewer would pay DTLS/SRTP,
RTP packetization and a jitter buffer on both sides for every packet, and lose packets a
pass-through never lost; a TCP stream between two processes on one network carries the
already-encoded frames as they are (``liveshop bench relay --processes 2``: the hop's p95
is in the README).

An edge whose origin goes away (the process died, the show moved) connects again to
whichever process serves the show then, every ``RECONNECT_MAX_S`` at most; its viewers stay
attached and resume at the new source's first keyframe.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCRtpCodecCapability

from .media import EncodedFrame
from .relay import ShowRelay

log = logging.getLogger("liveshop.video")

HEADER = struct.Struct(">IB")
FRAME = struct.Struct(">qd")
MAX_MESSAGE = 8 * 1024 * 1024
HELLO_TIMEOUT_S = 5.0
# An edge that cannot take frames as fast as they come (its process is stuck) is dropped
# past this much unsent data; it connects again and restarts at a keyframe.
WRITE_BUFFER_LIMIT = 8 * 1024 * 1024
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 2.0
HOP_SAMPLES = 2048
TIME_BASES = {"video": Fraction(1, 90_000), "audio": Fraction(1, 48_000)}
KINDS = {b"V"[0]: "video", b"A"[0]: "audio"}
TYPES = {"video": b"V"[0], "audio": b"A"[0]}


def feed_auth(secret: bytes, show_id: str) -> str:
    return hmac.new(secret, f"liveshop-feed:{show_id}".encode(), hashlib.sha256).hexdigest()


def _message(kind: int, body: bytes) -> bytes:
    return HEADER.pack(len(body) + 1, kind) + body


def _codec_json(mime: str, codec: Any) -> bytes:
    return json.dumps(
        {
            "mime": mime,
            "codec": {
                "mimeType": codec.mimeType,
                "clockRate": codec.clockRate,
                "channels": codec.channels,
                "parameters": dict(codec.parameters or {}),
            },
        }
    ).encode()


async def _read_message(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    length, kind = HEADER.unpack(await reader.readexactly(HEADER.size))
    if not 1 <= length <= MAX_MESSAGE:
        raise ValueError(f"feed message of {length} bytes")
    return kind, await reader.readexactly(length - 1)


class _EdgeTap:
    """On the origin: one edge's connection, a tap of the show's relay."""

    def __init__(self, relay: ShowRelay, writer: asyncio.StreamWriter) -> None:
        self.relay = relay
        self.writer = writer
        self.closed = asyncio.Event()

    def _send(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        transport = self.writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            log.warning("edge feed behind; dropped", extra={"show": self.relay.show_id})
            self.close()
            return
        self.writer.write(data)

    def _frame(self, kind: str, frame: EncodedFrame, sent: float) -> bytes:
        return _message(TYPES[kind], FRAME.pack(frame.packet.pts or 0, sent) + bytes(frame.packet))

    def source_attached(self, video_mime: str, video_codec: Any, gop: list[EncodedFrame]) -> None:
        self._send(_message(b"C"[0], _codec_json(video_mime, video_codec)))
        now = time.time()
        for frame in gop:
            self._send(self._frame("video", frame, now))

    def frame(self, kind: str, frame: EncodedFrame) -> None:
        self._send(self._frame(kind, frame, time.time()))

    def source_detached(self) -> None:
        self._send(_message(b"D"[0], b""))

    def close(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            self.writer.close()


RelayFor = Callable[[str], ShowRelay | None]
Released = Callable[[str], None]


class FeedServer:
    """On every process: serves the feed of the shows whose origin it is.

    ``relay_for(show_id)`` gives the relay of a show this process is the origin of (None
    otherwise: the edge looks again); ``released(show_id)`` is called when an edge leaves.
    """

    def __init__(self, secret: bytes, relay_for: RelayFor, released: Released) -> None:
        self._secret = secret
        self._relay_for = relay_for
        self._released = released
        self._server: asyncio.Server | None = None
        self._taps: set[_EdgeTap] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, host: str, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @property
    def edge_count(self) -> int:
        return len(self._taps)

    def edges_of(self, show_id: str) -> int:
        return sum(1 for tap in self._taps if tap.relay.show_id == show_id)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        tap: _EdgeTap | None = None
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                kind, body = await _read_message(reader)
            hello = json.loads(body) if kind == b"H"[0] else {}
            show_id = str(hello.get("show_id", ""))
            expected = feed_auth(self._secret, show_id)
            if not hmac.compare_digest(expected, str(hello.get("auth", ""))):
                log.warning("edge feed refused: bad credentials")
                return
            relay = self._relay_for(show_id)
            if relay is None:
                return  # not (or no longer) this show's origin: the edge looks again
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tap = _EdgeTap(relay, writer)
            self._taps.add(tap)
            relay.add_tap(tap)
            while not tap.closed.is_set():
                kind, _ = await _read_message(reader)
                if kind == b"K"[0]:
                    relay.request_keyframe()
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, ValueError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("edge feed failed")
        finally:
            if tap is not None:
                tap.relay.remove_tap(tap)
                self._taps.discard(tap)
                tap.close()
                self._released(tap.relay.show_id)
            else:
                writer.close()
            if task is not None:
                self._handlers.discard(task)

    def drop_show(self, show_id: str) -> None:
        """Close the feeds of ``show_id`` (it is served elsewhere now)."""
        for tap in list(self._taps):
            if tap.relay.show_id == show_id:
                tap.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for tap in list(self._taps):
            tap.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None


Locate = Callable[[], Awaitable[tuple[str, int] | None]]


class EdgeFeed:
    """On an edge: feeds the local relay of one show from its origin, reconnecting."""

    def __init__(self, show_id: str, relay: ShowRelay, locate: Locate, secret: bytes) -> None:
        self.show_id = show_id
        self.relay = relay
        self._locate = locate
        self._secret = secret
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._epoch: object | None = None
        self.connects = 0
        self.hops_ms: deque[float] = deque(maxlen=HOP_SAMPLES)
        self.idle_since: float | None = None

    def start(self) -> None:
        self.relay.pinned = True
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"edge-feed-{self.show_id}"
        )

    async def wait_ready(self, seconds: float) -> bool:
        """True once the origin has told the codec (a source is attached)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._ready.wait()
        return self._ready.is_set()

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def _request_keyframe(self) -> None:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            writer.write(_message(b"K"[0], b""))

    async def _run(self) -> None:
        backoff = RECONNECT_MIN_S
        while True:
            try:
                where = await self._locate()
                if where is not None:
                    await self._follow(*where)
                    backoff = RECONNECT_MIN_S
            except asyncio.CancelledError:
                raise
            except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
                log.info("edge feed lost: %r", exc, extra={"show": self.show_id})
            except Exception:
                log.exception("edge feed failed", extra={"show": self.show_id})
            finally:
                self._detach()
            await asyncio.sleep(backoff)
            backoff = min(RECONNECT_MAX_S, backoff * 2)

    async def _follow(self, host: str, port: int) -> None:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        self._writer = writer
        self.connects += 1
        try:
            hello = {"show_id": self.show_id, "auth": feed_auth(self._secret, self.show_id)}
            writer.write(_message(b"H"[0], json.dumps(hello).encode()))
            relay = self.relay
            while True:
                kind, body = await _read_message(reader)
                if kind in KINDS:
                    if self._epoch is None:
                        continue
                    pts, sent = FRAME.unpack_from(body)
                    name = KINDS[kind]
                    packet = av.Packet(body[FRAME.size :])
                    packet.pts = packet.dts = pts
                    packet.time_base = TIME_BASES[name]
                    if name == "video":
                        self.hops_ms.append((time.time() - sent) * 1000)
                    relay.push(self._epoch, name, packet)
                elif kind == b"C"[0]:
                    self._detach()
                    described = json.loads(body)
                    codec = RTCRtpCodecCapability(**described["codec"])
                    self._epoch = object()
                    relay.attach_source(
                        self._epoch, described["mime"], codec, self._request_keyframe
                    )
                    self._ready.set()
                elif kind == b"D"[0]:
                    self._detach()
        finally:
            self._writer = None
            writer.close()

    def _detach(self) -> None:
        if self._epoch is not None:
            self.relay.detach_source(self._epoch)
            self._epoch = None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._detach()
        self.relay.pinned = False
