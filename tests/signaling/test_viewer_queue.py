from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest

from signaling.media import EncodedFrame
from signaling.viewer_queue import QueueClosed, ViewerQueue


def frame(pts: int, keyframe: bool = False) -> EncodedFrame:
    packet: av.Packet[Any] = av.Packet(b"x")
    packet.pts = pts
    return EncodedFrame(packet, keyframe, 1)


def drain(queue: ViewerQueue) -> list[int]:
    out = []
    while len(queue):
        out.append(asyncio.run(queue.get()).packet.pts or 0)
    return out


def test_first_frame_is_a_keyframe() -> None:
    queue = ViewerQueue(5)
    queue.put(frame(1))
    queue.put(frame(2))
    queue.put(frame(3, keyframe=True))
    queue.put(frame(4))
    assert drain(queue) == [3, 4]
    assert queue.dropped == 2


def test_overflow_skips_to_the_next_keyframe() -> None:
    queue = ViewerQueue(3)
    queue.put(frame(0, keyframe=True))
    for pts in (1, 2):
        queue.put(frame(pts))
    queue.put(frame(3))  # full: everything goes, wait for a keyframe
    assert len(queue) == 0
    assert queue.skips == 1
    queue.put(frame(4))
    queue.put(frame(5, keyframe=True))
    queue.put(frame(6))
    assert drain(queue) == [5, 6]
    assert queue.dropped == 5


def test_keyframe_at_a_full_queue_starts_over_with_it() -> None:
    queue = ViewerQueue(2)
    queue.put(frame(0, keyframe=True))
    queue.put(frame(1))
    queue.put(frame(2, keyframe=True))
    assert drain(queue) == [2]
    assert (queue.skips, queue.dropped) == (1, 2)


def test_prime_gives_the_group_of_pictures_beyond_the_bound() -> None:
    queue = ViewerQueue(2)
    queue.prime([frame(0, keyframe=True), frame(1), frame(2), frame(3)])
    queue.put(frame(4))
    assert drain(queue) == [0, 1, 2, 3, 4]
    queue.prime([frame(10, keyframe=True)])  # only a viewer that has had nothing
    assert len(queue) == 0


def test_prime_without_a_keyframe_is_ignored() -> None:
    queue = ViewerQueue(2)
    queue.prime([frame(1)])
    assert queue.needs_keyframe and len(queue) == 0


async def test_get_waits_and_close_wakes_it() -> None:
    queue = ViewerQueue(2)
    waiter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put(frame(7, keyframe=True))
    assert (await waiter).packet.pts == 7
    waiter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.close()
    with pytest.raises(QueueClosed):
        await waiter


def test_bound_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ViewerQueue(0)


STEP = 3000  # one frame at 30 fps, 90 kHz


def gop(first: int, count: int) -> list[EncodedFrame]:
    return [frame((first + i) * STEP, keyframe=i == 0) for i in range(count)]


def test_a_viewer_that_cannot_decode_starts_again_at_the_cached_keyframe() -> None:
    queue = ViewerQueue(120)
    queue.prime(gop(0, 3))
    queue.put(frame(3 * STEP))
    assert queue.reprime(gop(0, 5))
    assert drain(queue) == [i * STEP for i in range(5)]
    assert queue.reprimes == 1
    assert not queue.reprime([frame(9 * STEP)])  # no keyframe to start from


def test_a_viewer_far_behind_jumps_to_the_hosts_next_keyframe() -> None:
    queue = ViewerQueue(120, jump_lag_s=0.3)
    queue.prime(gop(0, 180))  # a 6 s backlog
    for i in range(180, 190):
        queue.put(frame(i * STEP))
    queue.put(frame(190 * STEP, keyframe=True))
    assert drain(queue) == [190 * STEP]
    assert queue.jumps == 1 and queue.skips == 0


def test_a_viewer_close_to_live_does_not_jump() -> None:
    queue = ViewerQueue(120, jump_lag_s=0.3)
    queue.prime(gop(0, 1))
    for i in range(1, 5):  # 4 frames (133 ms) behind
        queue.put(frame(i * STEP))
    queue.put(frame(5 * STEP, keyframe=True))
    assert len(drain(queue)) == 6 and queue.jumps == 0


def test_a_backlog_being_caught_up_is_not_cut_off_but_falling_further_behind_is() -> None:
    queue = ViewerQueue(10)
    queue.prime(gop(0, 30))  # more than max_frames of backlog
    for i in range(30, 40):  # max_frames live frames on top: still within the bound
        queue.put(frame(i * STEP))
    assert queue.skips == 0 and len(queue) == 40
    queue.put(frame(40 * STEP))  # further behind than that: cut
    assert queue.skips == 1 and len(queue) == 0
