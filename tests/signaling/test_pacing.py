"""The per-viewer pacer and its rate (``signaling.pacing``), on a real event loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from signaling import pacing
from signaling.pacing import Pacer, RateControl, SenderStats

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
    assert 0.5 < took < 1.2 and rate < 2_000_000, (took, rate)
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
    assert control.rate_bps == pytest.approx(top * pacing.DECREASE)
    for step in range(21, 50):  # no loss for 9 s: it grows, but not past the rate that lost
        control.sent(100)
        control.update(now + 0.3 * step)
    assert top * pacing.DECREASE < control.rate_bps <= top * pacing.KNOWN_MAX_SHARE + 1


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
