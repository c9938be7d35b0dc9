"""Recording a host's stream to a file by muxing its packets (never transcoding).

One file per publisher session, in ``recording_dir``: H.264 in MPEG-TS (``.ts``, which
takes the Annex B stream as it comes), VP8 in WebM (``.webm``); Opus audio alongside.
Writing starts at the first video keyframe. Packets are muxed on the event loop as they
arrive (a few kilobytes per frame).
"""

from __future__ import annotations

import logging
import struct
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from .media import is_keyframe

logger = logging.getLogger(__name__)

FORMATS = {"video/h264": ("mpegts", "ts", "h264"), "video/vp8": ("webm", "webm", "vp8")}


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 section 9.1)."""
    if len(data) < 10 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack("<HH", data[6:10])
    return width & 0x3FFF, height & 0x3FFF


class Recorder:
    def __init__(self, directory: str, show_id: str, session_id: str, video_mime: str) -> None:
        fmt, ext, codec = FORMATS[video_mime]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.path = Path(directory) / f"{show_id}-{stamp}-{session_id}.{ext}"
        self._format, self._codec, self._mime = fmt, codec, video_mime
        self._container: Any = None
        self._streams: dict[str, Any] = {}
        self._origin: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self.packets = 0

    def write(self, kind: str, packet: av.Packet[Any]) -> None:
        if packet.pts is None:
            return
        data = bytes(packet)
        if self._container is None:
            if kind != "video" or not is_keyframe(self._mime, data):
                return
            self._open(data)
        stream = self._streams.get(kind)
        if stream is None:
            return
        pts = packet.pts - self._origin.setdefault(kind, packet.pts)
        if pts <= self._last.get(kind, -1):
            return  # the muxer needs rising timestamps
        self._last[kind] = pts
        copy = av.Packet(data)  # the relay's packet is shared with viewers: never touched
        copy.pts = copy.dts = pts
        copy.time_base = packet.time_base
        copy.stream = stream
        try:
            self._container.mux(copy)
            self.packets += 1
        except av.FFmpegError:
            logger.exception("recording %s: muxing failed; recording stops", self.path)
            self.close()
            self._streams.clear()

    def _open(self, keyframe: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w", format=self._format)
        size = vp8_size(keyframe) if self._codec == "vp8" else None
        extra = {"width": size[0], "height": size[1]} if size else {}
        self._streams["video"] = self._container.add_mux_stream(self._codec, rate=30, **extra)
        self._streams["audio"] = self._container.add_mux_stream("opus", rate=48000)
        self._streams["audio"].time_base = Fraction(1, 48000)

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:
                logger.exception("recording %s: closing failed", self.path)
            self._container = None
