"""Per-viewer pacing of video RTP: a token bucket at a rate the viewer's link can take.

A viewer's sender (``aiortc_hooks.FastRtpSender``) hands each frame's packets to its
``Pacer`` instead of the socket. The pacer sends at once what its budget allows and the
rest from a timer every few milliseconds; retransmissions go before media. The sender waits
(``wait_room``) while more than ``HIGH_WATER_S`` of the rate is queued, so frames wait in
the viewer's frame queue (where the relay's skip and jump rules apply), not here.

The rate (``RateControl``) starts at ``START_FACTOR`` times the host's bitrate (the join
backlog drains at the difference), may grow to ``CEILING_FACTOR`` times it, and follows
the viewer's feedback every ``FEEDBACK_S``: a loss share over ``LOSS_HIGH`` among the
packets sent (first NACKs of a packet) cuts it by ``DECREASE`` (a narrow link's queue
overflowed), once per ``DECREASE_GAP_S`` (the NACKs of what was sent before a cut still
come in after it: cut again for them and a 2.5 Mbit/s link was paced at the floor, which
left a late joiner seconds behind after its jump to live), a share under
``LOSS_LOW`` lets it grow again by ``INCREASE``, for ``KNOWN_MAX_S`` no higher than
``KNOWN_MAX_SHARE`` of the rate that lost packets; a REMB estimate, when the viewer sends
one, caps it. It never goes under ``FLOOR_FACTOR`` times the host's bitrate (a link
narrower than the stream cannot be helped by sending slower) nor over ``MAX_RATE_BPS``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

PACE_INTERVAL_S = 0.005
BURST_S = 0.04
HIGH_WATER_S = 0.04
FEEDBACK_S = 0.25
LOSS_HIGH = 0.10
LOSS_LOW = 0.02
GROWTH_WINDOWS = 4  # the loss that lets the rate grow is over this many intervals
DECREASE = 0.7
INCREASE = 1.08
HOLD_AFTER_DECREASE_S = 1.0
DECREASE_GAP_S = 0.5
KNOWN_MAX_SHARE = 0.9
KNOWN_MAX_S = 10.0
START_FACTOR = 1.5
CEILING_FACTOR = 2.5
FLOOR_FACTOR = 1.1
REMB_FACTOR = 1.0
CATCH_UP_FACTOR = 1.5  # while catching up, a REMB caps the rate no lower than this
REMB_VALID_S = 3.0
DEFAULT_STREAM_BPS = 1_500_000
MIN_RATE_BPS = 300_000
MAX_RATE_BPS = 50_000_000
MIN_BURST_BYTES = 2 * 1300


@dataclass
class SenderStats:
    """Counters of every paced sender of one process (``SignalingService.stats``)."""

    nacks_served: int = 0
    nacks_unserved: int = 0
    nacks_skipped: int = 0  # asked again within an RTT of a resend
    reprimes: int = 0  # of viewers gone (live ones: their queues)
    stalls: int = 0  # of viewers gone (live ones: their queues)
    paced_packets: int = 0
    queued_bytes: int = 0  # now, over the live pacers (kept up by each pacer)


def decrease_factor(loss: float) -> float:
    """The cut for a loss share over ``LOSS_HIGH``: GCC's loss-based ``1 - loss / 2``, never
    deeper than ``DECREASE`` (a flat 0.7 cut a 2.5 Mbit/s link's pacing to its floor after
    one join burst, and a late joiner then stayed seconds behind after its jump)."""
    return max(DECREASE, 1 - 0.5 * loss)


class RateControl:
    """The pacing rate of one viewer (see the module doc)."""

    def __init__(self, stream_bps: Callable[[], float]) -> None:
        self._stream_bps = stream_bps
        self.rate_bps = self._clamp(START_FACTOR * self.stream())
        self._ceiling_bps = self.rate_bps
        self._sent = 0
        self._lost = 0
        self._recent: deque[tuple[int, int]] = deque(maxlen=GROWTH_WINDOWS)
        self.catching_up = False  # frames wait behind the one being sent (the sender sets it)
        self._since = time.monotonic()
        self._hold_until = 0.0
        self._decreased_at = float("-inf")
        self._remb_bps: float | None = None
        self._remb_at = float("-inf")
        self.loss = 0.0  # the share of packets lost over the last feedback interval
        self._known_max: float | None = None  # just under the rate that last lost packets
        self._known_at = float("-inf")

    def stream(self) -> float:
        return self._stream_bps() or DEFAULT_STREAM_BPS

    def _clamp(self, rate: float) -> float:
        floor = max(MIN_RATE_BPS, FLOOR_FACTOR * self.stream())
        return min(MAX_RATE_BPS, max(floor, rate))

    def sent(self, packets: int) -> None:
        self._sent += packets

    def lost(self, packets: int) -> None:
        self._lost += packets

    def remb(self, bps: float) -> None:
        self._remb_bps = bps
        self._remb_at = time.monotonic()

    def update(self, now: float) -> None:
        """Every ``FEEDBACK_S``: the rate from the loss seen and the last REMB."""
        if now - self._since < FEEDBACK_S:
            return
        loss = self._lost / self._sent if self._sent else 0.0
        self.loss = loss
        # Random loss (a phone's 1%) is not congestion, and one packet of an interval's 50
        # is already 2%: whether the rate may grow is read over the last second.
        self._recent.append((self._sent, self._lost))
        sent = sum(n for n, _ in self._recent)
        steady = sum(n for _, n in self._recent) / sent if sent else 0.0
        ceiling = CEILING_FACTOR * self.stream()
        rate = self.rate_bps
        if loss > LOSS_HIGH and now - self._decreased_at >= DECREASE_GAP_S:
            self._known_max = rate * KNOWN_MAX_SHARE
            self._known_at = now
            rate *= decrease_factor(loss)
            self._hold_until = now + HOLD_AFTER_DECREASE_S
            self._decreased_at = now
        elif loss <= LOSS_HIGH and steady < LOSS_LOW and now >= self._hold_until:
            rate *= INCREASE
            if self._known_max is not None and now - self._known_at < KNOWN_MAX_S:
                rate = min(rate, self._known_max)
        if self._remb_bps is not None and now - self._remb_at < REMB_VALID_S:
            # A receiver's estimate follows what it receives (aiortc's and libwebrtc's
            # grow by some 8% a second): a viewer catching up at that rate stays seconds
            # behind, so while it catches up the cap is never under CATCH_UP_FACTOR times
            # the stream (loss still cuts the rate on a link narrower than that).
            cap = REMB_FACTOR * self._remb_bps
            if self.catching_up:
                cap = max(cap, CATCH_UP_FACTOR * self.stream())
            rate = min(rate, cap)
        self.rate_bps = self._clamp(min(rate, ceiling))
        self._sent = self._lost = 0
        self._since = now


Packet = tuple[int, bytes, bytes]  # (sequence number, header, payload)
Send = Callable[[list[Packet], bool], None]  # (packets, whether they waited in the pacer)


class Pacer:
    """Sends ``(sequence number, header, payload)`` s through ``send`` at ``control``'s
    rate. Everything here runs on the event loop; nothing blocks."""

    def __init__(self, send: Send, control: RateControl, stats: SenderStats) -> None:
        self._send = send
        self.control = control
        self._stats = stats
        self._media: deque[Packet] = deque()
        self._rtx: deque[Packet] = deque()
        self._queued = 0
        self._budget = self._burst()
        self._refilled = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None
        self._room: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def queued_bytes(self) -> int:
        return self._queued

    def _burst(self) -> float:
        return max(MIN_BURST_BYTES, self.control.rate_bps / 8 * BURST_S)

    def _refill(self, now: float) -> None:
        self.control.update(now)
        self._budget = min(
            self._burst(), self._budget + (now - self._refilled) * self.control.rate_bps / 8
        )
        self._refilled = now

    def send_media(self, packets: list[Packet], size: int) -> None:
        """Send a frame's ``packets`` (``size`` bytes in all): at once when nothing waits
        and the budget allows, else queued."""
        if self._closed:
            return
        if not self._media and not self._rtx and self._timer is None:
            self._refill(time.monotonic())
            if self._budget >= size:
                self._budget -= size
                self.control.sent(len(packets))
                self._stats.paced_packets += len(packets)
                self._send(packets, False)
                return
        self._queued += size
        self._stats.queued_bytes += size
        self._media.extend(packets)
        self._drain()

    def send_rtx(self, packet: Packet) -> None:
        if self._closed:
            return
        size = len(packet[1]) + len(packet[2])
        self._queued += size
        self._stats.queued_bytes += size
        self._rtx.append(packet)
        self._drain()

    def _high_water(self) -> float:
        return max(MIN_BURST_BYTES, self.control.rate_bps / 8 * HIGH_WATER_S)

    async def wait_room(self) -> None:
        """Return once no more than the high-water mark is queued."""
        while self._queued > self._high_water() and not self._closed:
            self._room = asyncio.get_running_loop().create_future()
            try:
                await self._room
            finally:
                self._room = None

    def _on_timer(self) -> None:
        self._timer = None
        self._drain()

    def _drain(self) -> None:
        if self._closed:
            return
        self._refill(time.monotonic())
        batch: list[Packet] = []
        while (self._rtx or self._media) and self._budget > 0:
            packet = (self._rtx or self._media).popleft()
            size = len(packet[1]) + len(packet[2])
            self._queued -= size
            self._stats.queued_bytes -= size
            self._budget -= size
            batch.append(packet)
        if batch:
            self.control.sent(len(batch))
            self._stats.paced_packets += len(batch)
            self._send(batch, True)
        if (self._rtx or self._media) and self._timer is None:
            wait = max(PACE_INTERVAL_S, -self._budget * 8 / self.control.rate_bps)
            self._timer = asyncio.get_running_loop().call_later(wait, self._on_timer)
        room = self._room
        if room is not None and not room.done() and self._queued <= self._high_water():
            room.set_result(None)

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._stats.queued_bytes -= self._queued
        self._queued = 0
        self._media.clear()
        self._rtx.clear()
        if self._room is not None and not self._room.done():
            self._room.set_result(None)


# A frame with this many frames queued behind it is being caught up on (at least 100 ms
# behind the host); a gap in media time over MAX_MEDIA_GAP_S between two frames sent is a
# jump to live (or a re-prime, when time goes back).
CATCH_UP_BEHIND = 3
MAX_MEDIA_GAP_S = 0.5


class ViewerTimeline:
    """A viewer's RTP timestamps, which tell its player when to show each frame.

    Live, they follow the host's (media time). A player shows a frame at the time its
    timestamp says, against when the first frames came: so a backlog sent faster than real
    time must not carry the host's timestamps (the player would hold every frame of it for
    its time, and stay that far behind live), nor may a jump to live (a frame seconds later
    in media time, arriving 33 ms after the one before: the player held it for seconds, a
    frozen picture, in Chromium). While catching up (``CATCH_UP_BEHIND`` frames or more
    queued behind) a frame advances the timestamp by the time since the one before was
    sent, if that is less than its media time; a jump or a re-prime by one frame's time at
    most. The player then plays the backlog as fast as it comes, and is live when it ends.
    """

    def __init__(self, clock_rate: int, frame_step: int, origin: int) -> None:
        self.clock_rate = clock_rate
        self.frame_step = frame_step
        self.max_gap = int(MAX_MEDIA_GAP_S * clock_rate)
        self._origin = origin
        self._last_media: int | None = None
        self._last_out = 0
        self._last_at = 0.0

    def next(self, media: int, now: float, behind: int) -> int:
        """The RTP timestamp of a frame of media time ``media`` sent at ``now`` with
        ``behind`` frames queued after it."""
        if self._last_media is None:
            out = (self._origin + media) & 0xFFFFFFFF
        else:
            media_delta = media - self._last_media
            sent_delta = max(1, round((now - self._last_at) * self.clock_rate))
            if media_delta <= 0 or media_delta > self.max_gap:
                delta = min(sent_delta, self.frame_step)
            elif behind >= CATCH_UP_BEHIND:
                delta = min(media_delta, sent_delta)
            else:
                delta = media_delta
            out = (self._last_out + delta) & 0xFFFFFFFF
        self._last_media, self._last_out, self._last_at = media, out, now
        return out
