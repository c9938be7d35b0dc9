from __future__ import annotations

import asyncio
from typing import Any

import av

from signaling.relay import FANOUT_CHUNK, RelayViewer, ShowRelay

VP8_KEY = b"\x10\x02\x00\x9d\x01\x2a"
VP8_DELTA = b"\x11\x02\x00"


def packet(data: bytes, pts: int) -> av.Packet[Any]:
    result: av.Packet[Any] = av.Packet(data)
    result.pts = pts
    return result


async def no_request() -> None:
    return None


def relay_with_source(epoch: object) -> ShowRelay:
    relay = ShowRelay("show1", viewer_queue_frames=10, keyframe_request_interval_s=1.0)
    relay.attach_source(epoch, "video/vp8", None, no_request)
    return relay


def viewer(relay: ShowRelay) -> RelayViewer:
    joined = RelayViewer(relay.new_queue(), relay.new_audio_queue(), "video/vp8")
    relay.join(joined)
    return joined


async def test_new_viewer_gets_the_group_of_pictures_at_once() -> None:
    epoch = object()
    relay = relay_with_source(epoch)
    relay.push(epoch, "video", packet(VP8_DELTA, 0))  # before any keyframe: not kept
    for pts, data in ((3000, VP8_KEY), (6000, VP8_DELTA), (9000, VP8_DELTA)):
        relay.push(epoch, "video", packet(data, pts))
    late = viewer(relay)
    got = [(await late.video.get()).packet.pts for _ in range(3)]
    assert got == [3000, 6000, 9000]
    await relay.close()


async def test_timestamps_keep_rising_across_publisher_sessions() -> None:
    first, second = object(), object()
    relay = relay_with_source(first)
    watcher = viewer(relay)
    relay.push(first, "video", packet(VP8_KEY, 90000))
    relay.push(first, "video", packet(VP8_DELTA, 93000))
    got = [(await watcher.video.get()).packet.pts for _ in range(2)]
    relay.attach_source(second, "video/vp8", None, no_request)
    relay.push(first, "video", packet(VP8_DELTA, 96000))  # the old session: ignored
    relay.push(second, "video", packet(VP8_DELTA, 0))  # waits for the new keyframe
    relay.push(second, "video", packet(VP8_KEY, 3000))
    got.append((await watcher.video.get()).packet.pts)
    assert got == [90000, 93000, 99000]  # the new session starts one frame after the old
    assert len(watcher.video) == 0
    await relay.close()


async def test_fan_out_wakes_viewers_a_chunk_per_loop_turn() -> None:
    epoch = object()
    relay = relay_with_source(epoch)
    viewers = [viewer(relay) for _ in range(FANOUT_CHUNK * 3)]
    done: list[int] = []

    async def take(index: int, joined: RelayViewer) -> None:
        await joined.video.get()
        done.append(index)

    tasks = [asyncio.ensure_future(take(i, v)) for i, v in enumerate(viewers)]
    await asyncio.sleep(0)
    relay.push(epoch, "video", packet(VP8_KEY, 0))
    progress = []
    for _ in range(4):
        await asyncio.sleep(0)
        progress.append(len(done))
    assert progress[0] <= FANOUT_CHUNK
    assert progress[-1] == FANOUT_CHUNK * 3
    assert len(set(progress)) > 2  # spread over several turns
    await asyncio.gather(*tasks)
    await relay.close()


async def test_keyframe_requests_are_throttled() -> None:
    epoch = object()
    calls: list[int] = []

    async def request() -> None:
        calls.append(1)

    relay = ShowRelay("show1", viewer_queue_frames=10, keyframe_request_interval_s=60)
    relay.attach_source(epoch, "video/vp8", None, request)
    for _ in range(5):
        relay.request_keyframe()
        await asyncio.sleep(0)
    assert calls == [1]
    await relay.close()
