from __future__ import annotations

import asyncio
from pathlib import Path

import av
import pytest
from aiortc.mediastreams import AudioStreamTrack

from benches.synthetic import EncodedPatternTrack, read_index
from signaling import VideoState
from signaling.recording import vp8_size

from .support import end, publish, running_server, wait_index


@pytest.mark.parametrize(("codec", "suffix"), [("vp8", ".webm"), ("h264", ".ts")])
async def test_the_host_stream_is_muxed_to_a_file(tmp_path: Path, codec: str, suffix: str) -> None:
    async with running_server(recording_dir=str(tmp_path)) as server:
        track = EncodedPatternTrack(codec, gop=15)
        host = await publish(server.http, track, codec=codec, audio=AudioStreamTrack())
        await server.gate.wait_state("show1", VideoState.LIVE)
        await wait_index(track, 40)
        await asyncio.sleep(0.3)
        assert (await end(server.http, host)).status_code == 200
        await host.close()
    path, kinds, indexes = read_recording(tmp_path)
    assert path.suffix == suffix and path.name.startswith("show1-")
    assert kinds == {"video", "audio"}
    assert len(indexes) >= 20
    assert indexes == list(range(len(indexes)))


def read_recording(folder: Path) -> tuple[Path, set[str], list[int]]:
    (path,) = folder.iterdir()
    with av.open(str(path)) as container:
        kinds: set[str] = {str(stream.type) for stream in container.streams}
        indexes = [read_index(frame) for frame in container.decode(video=0)]
    return path, kinds, indexes


def test_vp8_size() -> None:
    track = EncodedPatternTrack("vp8", width=320, height=240)
    (keyframe,) = track._encode(0)
    assert vp8_size(bytes(keyframe)) == (320, 240)
    assert vp8_size(b"\x00" * 10) is None
