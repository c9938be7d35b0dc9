"""The per-viewer pacer and its rate (``signaling.pacing``), on a real event loop."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from signaling import pacing
from signaling.pacing import Pacer, RateControl, SenderStats, ViewerTimeline, decrease_factor

MTU = 1200


def packets(first: int, count: int) -> list[tuple[int, bytes, bytes]]:
    return [(first + i, b"h" * 12, b"p" * (MTU - 12)) for i in range(count)]


async def test_a_burst_goes_out_at_the_pacing_rate_not_at_once() -> None:
    sent: list[tuple[float, int]] = []
    control = RateControl(lambda: 1_000_000)  # starts at 1.5 Mbit/s
    pacer = Pacer(
        lambda batch, waited: sent.extend((time.monotonic(), p[0]) for p in batch),
        control,
        SenderStats(),
    )
    start = time.monotonic()
    pacer.send_media(packets(0, 100), 100 * MTU)  # 120 KB: 0.64 s at 1.5 Mbit/s
    assert len(sent) < 10  # only the burst allowance at once
    async with asyncio.timeout(5):
        while len(sent) < 100:  # noqa: ASYNC110 - waits for the pacer's timer
            await asyncio.sleep(0.01)
    took = sent[-1][0] - start
    rate = 100 * MTU * 8 / took
    assert 0.5 < took < 1.1 and rate < 2_000_000, (took, rate)
    assert [seq for _, seq in sent] == list(range(100))
    pacer.close()


async def test_retransmissions_go_before_queued_media_and_wait_room_blocks() -> None:
    sent: list[int] = []
    stats = SenderStats()
    pacer = Pacer(
        lambda batch, waited: sent.extend(p[0] for p in batch),
        RateControl(lambda: 1_000_000),
        stats,
    )
    pacer.send_media(packets(0, 40), 40 * MTU)
    waited = asyncio.get_running_loop().create_task(pacer.wait_room())
    await asyncio.sleep(0)
    assert not waited.done() and stats.queued_bytes > 0
    pacer.send_rtx((-1, b"r" * 12, b"x" * 100))
    async with asyncio.timeout(5):
        while -1 not in sent:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    assert sent.index(-1) < 39  # ahead of what was queued
    async with asyncio.timeout(5):
        await waited
    pacer.close()
    assert stats.queued_bytes == 0


def test_heavy_loss_cuts_the_rate_and_it_does_not_climb_straight_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    control = RateControl(lambda: 1_500_000)
    start = control.rate_bps
    assert start == pytest.approx(pacing.START_FACTOR * 1_500_000)
    now = time.monotonic()
    for step in range(1, 20):  # no loss: it grows to its ceiling
        control.sent(100)
        control.update(now + 0.3 * step)
    top = control.rate_bps
    assert top == pytest.approx(pacing.CEILING_FACTOR * 1_500_000)
    control.sent(100)
    control.lost(30)  # a bottleneck's queue overflowed
    control.update(now + 0.3 * 20)
    cut = top * decrease_factor(0.3)
    assert control.rate_bps == pytest.approx(cut) and decrease_factor(0.3) == pytest.approx(0.85)
    for step in range(21, 50):  # no loss for 9 s: it grows, but not past the rate that lost
        control.sent(100)
        control.update(now + 0.3 * step)
    assert cut < control.rate_bps <= top * pacing.KNOWN_MAX_SHARE + 1
    assert decrease_factor(0.9) == pacing.DECREASE  # never deeper than that


def test_random_loss_under_the_threshold_does_not_cut_and_remb_caps() -> None:
    control = RateControl(lambda: 1_500_000)
    now = time.monotonic()
    control.sent(100)
    control.lost(3)  # 3% random loss is not congestion
    control.update(now + 0.3)
    assert control.rate_bps >= pacing.START_FACTOR * 1_500_000
    control.remb(2_000_000)
    control.sent(100)
    control.update(now + 0.6)
    assert control.rate_bps == pytest.approx(2_000_000)
    control.remb(100_000)  # never below the stream itself (times the floor factor)
    control.sent(100)
    control.update(now + 0.9)
    assert control.rate_bps == pytest.approx(pacing.FLOOR_FACTOR * 1_500_000)


def test_a_viewers_timestamps_follow_the_host_live() -> None:
    timeline = ViewerTimeline(90_000, 3000, origin=1000)
    out = [timeline.next(i * 3000, i / 30 + (0.004 if i % 2 else 0.0), 0) for i in range(30)]
    assert out == [1000 + i * 3000 for i in range(30)]  # send jitter changes nothing


def test_a_backlog_sent_fast_is_timed_as_it_is_sent_and_a_jump_is_one_frame() -> None:
    timeline = ViewerTimeline(90_000, 3000, origin=0)
    # a late joiner's 60 cached frames, sent at 75 fps (2.5 times real time), 59 behind
    times = [i / 75 for i in range(60)]
    out = [timeline.next(i * 3000, t, 59 - i) for i, t in enumerate(times)]
    steps = [b - a for a, b in itertools.pairwise(out)]
    assert all(step == 1200 for step in steps[:55]), steps  # 13.3 ms: shown as fast as sent
    # the last frames, with fewer than CATCH_UP_BEHIND behind: the host's time again
    assert steps[-2:] == [3000, 3000]
    # the jump to live: a keyframe 4 s later in media time, sent 13 ms after
    jumped = timeline.next(59 * 3000 + 4 * 90_000, times[-1] + 0.0133, 0)
    assert jumped - out[-1] == 1197
    # a re-prime at an earlier keyframe: still rising, by one frame at most
    again = timeline.next(0, times[-1] + 1.0, 30)
    assert again - jumped == 3000


def test_a_viewers_timestamps_wrap_around_32_bits() -> None:
    timeline = ViewerTimeline(90_000, 3000, origin=0xFFFFFFFF - 4000)
    first = timeline.next(0, 0.0, 0)
    second = timeline.next(3000, 1 / 30, 0)
    assert (first, second) == (0xFFFFFFFF - 4000, 0xFFFFFFFF - 1000)
    assert timeline.next(6000, 2 / 30, 0) == 1999


def test_one_overflow_cuts_the_rate_once() -> None:
    # The NACKs of packets sent before the cut arrive in the next feedback interval too:
    # they are the same overflow, not a second one.
    control = RateControl(lambda: 1_500_000)
    start = control.rate_bps
    now = time.monotonic()
    control.sent(100)
    control.lost(20)
    control.update(now + 0.3)
    once = start * decrease_factor(0.2)
    assert control.rate_bps == pytest.approx(once)
    control.sent(60)
    control.lost(10)  # late NACKs of the same overflow
    control.update(now + 0.6)
    assert control.rate_bps == pytest.approx(once)
    control.sent(100)
    control.lost(20)  # still overflowing after the gap: cut again
    control.update(now + 0.9)
    assert control.rate_bps == pytest.approx(
        max(pacing.FLOOR_FACTOR * 1_500_000, once * decrease_factor(0.2))
    )
