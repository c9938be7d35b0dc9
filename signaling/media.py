"""Encoded media as the relay sees it: packets, their codec and whether they are keyframes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import av

H264_NAL_IDR = 5
H264_NAL_SLICE = 1


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded frame (video) or packet (audio), shared read-only by every viewer."""

    packet: av.Packet[Any]
    keyframe: bool
    size: int


def vp8_is_keyframe(data: bytes) -> bool:
    # RFC 6386 section 9.1: bit 0 of the frame tag is 0 for a key frame.
    return len(data) > 0 and data[0] & 0x01 == 0


def h264_is_keyframe(data: bytes) -> bool:
    """True when the Annex B access unit holds an IDR slice."""
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        nal_type = data[pos + 3] & 0x1F
        if nal_type == H264_NAL_IDR:
            return True
        if nal_type == H264_NAL_SLICE:
            return False
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return False


def is_keyframe(mime_type: str, data: bytes) -> bool:
    kind, _, name = mime_type.lower().partition("/")
    if kind == "audio":
        return True
    if name == "vp8":
        return vp8_is_keyframe(data)
    if name == "h264":
        return h264_is_keyframe(data)
    raise ValueError(f"unsupported codec {mime_type}")
