"""Synthetic video for tests and the benchmark: numbered test patterns, raw or encoded.

The frame index is drawn into the top rows as 16 black/white blocks, so it survives
compression and a viewer can read which frame it got (``read_index``).
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from fractions import Fraction
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_TIME_BASE = Fraction(1, 90000)
INDEX_BITS = 16
BLOCK = 16
# H.264 SEI "user data unregistered" carrying the wall-clock send time (bench latency) and
# the frame's index (what a viewer that cannot decode tells a broken chain by: its RTP
# timestamps need not step by one frame, see ``signaling.pacing.ViewerTimeline``).
SEI_UUID = b"liveshop-sendts!"


def pattern(index: int, width: int, height: int, noise: bytes | None = None) -> Any:
    """A yuv420p frame whose top rows encode ``index`` (plus moving stripes and noise)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    luma = frame.planes[0]
    stride = luma.line_size
    base = bytes((x * 2) & 0xFF for x in range(width)) * 2
    shift = (index * 4) % width
    row = base[shift : shift + width] + bytes(stride - width)
    marks = b"".join(
        (b"\xff" if (index >> bit) & 1 else b"\x00") * BLOCK for bit in range(INDEX_BITS)
    )
    mark_row = (marks + bytes(64 for _ in range(width - len(marks))))[:width]
    mark_row += bytes(stride - width)
    rows = [mark_row] * BLOCK + [row] * (height - BLOCK)
    if noise is not None:
        # The lower half is noise, which makes the encoder reach its target bitrate.
        half = height // 2
        offset = (index * 7919) % (len(noise) - width * half)
        chunk = noise[offset : offset + width * half]
        rows[half:] = [
            chunk[r * width : (r + 1) * width] + bytes(stride - width) for r in range(half)
        ]
    luma.update(b"".join(rows))
    for plane in frame.planes[1:]:
        plane.update(b"\x80" * (plane.line_size * plane.height))
    return frame


def read_index(frame: Any) -> int:
    gray = frame.reformat(format="yuv420p").planes[0]
    data = bytes(gray)
    stride = gray.line_size
    index = 0
    for bit in range(INDEX_BITS):
        row = data[stride * (BLOCK // 2) :]
        block = row[bit * BLOCK + 4 : (bit + 1) * BLOCK - 4]
        if sum(block) / len(block) > 128:
            index |= 1 << bit
    return index


class PatternTrack(MediaStreamTrack):
    """Raw numbered frames at ``fps``; aiortc's sender encodes them (and answers PLI)."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.index = 0
        self._start: float | None = None

    async def _pace(self) -> int:
        if self._start is None:
            self._start = time.monotonic()
        index = self.index
        self.index += 1
        delay = self._start + index / self.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return index

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pace()
        frame = pattern(index, self.width, self.height)
        frame.pts = index * (90000 // self.fps)
        frame.time_base = VIDEO_TIME_BASE
        return frame


class EncodedPatternTrack(PatternTrack):
    """Numbered frames encoded here and yielded as ``av.Packet`` s.

    The sender only packetizes them, so keyframe requests are ignored, like OBS: a
    keyframe comes every ``gop`` frames and never otherwise.
    """

    def __init__(
        self,
        codec: str = "vp8",
        width: int = 320,
        height: int = 240,
        fps: int = 30,
        gop: int = 300,
        bitrate: int = 500_000,
        timestamps: bool = False,
        noise: bool = False,
    ) -> None:
        super().__init__(width, height, fps)
        self.timestamps = timestamps
        self.sent: dict[int, float] = {}
        self._noise = os.urandom(width * height * 2) if noise else None
        self._codec_name = codec
        if codec == "vp8":
            ctx = av.CodecContext.create("libvpx", "w")
            ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        else:
            ctx = av.CodecContext.create("libx264", "w")
            ctx.profile = "Baseline"
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1",
            }
        ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
        ctx.framerate = Fraction(fps, 1)
        ctx.time_base = VIDEO_TIME_BASE
        ctx.bit_rate = bitrate
        ctx.gop_size = gop
        self._ctx = ctx
        self._pending: list[Any] = []

    def _encode(self, index: int) -> list[Any]:
        frame = pattern(index, self.width, self.height, self._noise)
        frame.pts = index * (90000 // self.fps)
        frame.time_base = VIDEO_TIME_BASE
        packets = list(self._ctx.encode(frame))
        out = []
        for packet in packets:
            data = bytes(packet)
            if self.timestamps and self._codec_name == "h264":
                # (the packet's own frame: an encoder may hand out an earlier one)
                number = index if packet.pts is None else packet.pts // (90000 // self.fps)
                data = sei_timestamp(time.time(), number) + data
            copy = av.Packet(data)
            copy.pts = packet.pts
            copy.time_base = VIDEO_TIME_BASE
            out.append(copy)
        return out

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        while not self._pending:
            index = await self._pace()
            self.sent[index] = time.time()
            loop = asyncio.get_running_loop()
            self._pending = await loop.run_in_executor(None, self._encode, index)
        return self._pending.pop(0)


def sei_timestamp(t: float, index: int = 0) -> bytes:
    """An Annex B SEI NAL (user data unregistered) carrying ``t`` (seconds, big-endian) and
    the frame's ``index`` (ten ASCII digits: binary zeros would make a start code, at which
    a packetizer splits the NAL unit)."""
    payload = SEI_UUID + struct.pack(">d", t) + b"%010d" % (index % 10**10)
    body = bytes([5, len(payload)]) + payload + b"\x80"
    return b"\x00\x00\x00\x01\x06" + body


def read_sei_timestamp(data: bytes) -> float | None:
    pos = data.find(SEI_UUID)
    if pos < 0 or pos + 24 > len(data):
        return None
    value: float = struct.unpack(">d", data[pos + 16 : pos + 24])[0]
    return value


def read_sei_index(data: bytes) -> int | None:
    """The frame index ``sei_timestamp`` wrote, or None."""
    pos = data.find(SEI_UUID)
    digits = data[pos + 24 : pos + 34]
    if pos < 0 or len(digits) < 10 or not digits.isdigit():
        return None
    return int(digits)
