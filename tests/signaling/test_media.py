from __future__ import annotations

import pytest

from benches.synthetic import (
    EncodedPatternTrack,
    read_sei_index,
    read_sei_timestamp,
    sei_timestamp,
)
from signaling.media import h264_is_keyframe, is_keyframe, vp8_is_keyframe


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_keyframes_of_real_encoders(codec: str) -> None:
    track = EncodedPatternTrack(codec, gop=3)
    flags = [
        is_keyframe(f"video/{codec}", bytes(packet))
        for index in range(6)
        for packet in track._encode(index)
    ]
    assert flags == [True, False, False, True, False, False]


def test_keyframe_edge_cases() -> None:
    assert not vp8_is_keyframe(b"")
    assert not h264_is_keyframe(b"\x00\x00\x01")
    assert h264_is_keyframe(sei_timestamp(1.0) + b"\x00\x00\x00\x01\x65\x88")
    assert not h264_is_keyframe(b"\x00\x00\x00\x01\x41\x9a\x00\x00\x01\x65")
    assert is_keyframe("audio/opus", b"\x01")
    with pytest.raises(ValueError):
        is_keyframe("video/av1", b"\x00")


def test_sei_timestamp_round_trip() -> None:
    assert read_sei_timestamp(b"junk" + sei_timestamp(1234.5) + b"more") == 1234.5
    assert read_sei_timestamp(b"nothing") is None


def test_sei_carries_the_frame_index() -> None:
    data = b"junk" + sei_timestamp(1234.5, 77) + b"more"
    assert (read_sei_timestamp(data), read_sei_index(data)) == (1234.5, 77)
    assert read_sei_index(b"nothing") is None
