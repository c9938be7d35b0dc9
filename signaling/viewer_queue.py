"""One viewer's bounded queue of encoded frames, with the slow-consumer policy.

Policy: at most ``max_frames`` live frames wait for a viewer. A frame that arrives at a
full queue empties it, and every frame is then dropped until the next keyframe: a viewer
that falls behind skips ahead to a picture it can decode, and never slows the publisher or
the other viewers (``put`` never blocks). The first frame a viewer gets is a keyframe.

The group of pictures given to a new viewer (``prime``), or again to a viewer that could
not decode (``reprime``), is a backlog handed out first, as fast as the viewer's pacer
takes it; the bound then counts from the least the viewer has been behind since, so a
viewer catching up on a narrow link is not cut off, and one that falls further behind by
``max_frames`` is. With ``jump_lag_s``, a keyframe from the host that finds the viewer
that far behind replaces what waits: the viewer jumps to live at the host's next keyframe
instead of catching up for the rest of the group of pictures.

``stalls`` counts the times frames waited while the sender took none for ``STALL_S``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence

from .media import EncodedFrame

STALL_S = 0.5


class QueueClosed(Exception):
    """The queue was closed; no more frames will come."""


class ViewerQueue:
    def __init__(
        self, max_frames: int, jump_lag_s: float | None = None, clock_rate: int = 90_000
    ) -> None:
        if max_frames < 1:
            raise ValueError("max_frames must be at least 1")
        self.max_frames = max_frames
        self.jump_lag_s = jump_lag_s
        self.clock_rate = clock_rate
        self.dropped = 0
        self.skips = 0
        self.jumps = 0
        self.reprimes = 0
        self.stalls = 0
        self.last_reprime = float("-inf")
        self._allowance = 0
        self._last_get = time.monotonic()
        self._stalled = False
        self._backlog: deque[EncodedFrame] = deque()
        self._frames: deque[EncodedFrame] = deque()
        self._needs_keyframe = True
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._backlog) + len(self._frames)

    @property
    def backlogged(self) -> bool:
        return bool(self._backlog)

    @property
    def needs_keyframe(self) -> bool:
        return self._needs_keyframe

    def prime(self, frames: Sequence[EncodedFrame]) -> None:
        """Start a viewer that has had nothing yet with ``frames`` (a keyframe first)."""
        if not self._needs_keyframe or not frames or not frames[0].keyframe:
            return
        self._start(frames)

    def reprime(self, frames: Sequence[EncodedFrame]) -> bool:
        """Start again at ``frames`` (a keyframe first) whatever waits: the viewer could
        not decode. False when there is no keyframe to start from."""
        if self._closed or not frames or not frames[0].keyframe:
            return False
        self._backlog.clear()
        self._frames.clear()
        self.reprimes += 1
        self.last_reprime = time.monotonic()
        self._start(frames)
        return True

    def _start(self, frames: Sequence[EncodedFrame]) -> None:
        self._backlog.extend(frames)
        self._allowance = len(frames)
        self._needs_keyframe = False
        self._last_get = time.monotonic()
        self.wake()

    def _lag_s(self, frame: EncodedFrame) -> float:
        oldest = self._backlog[0] if self._backlog else self._frames[0] if self._frames else None
        if oldest is None or oldest.packet.pts is None or frame.packet.pts is None:
            return 0.0
        return (frame.packet.pts - oldest.packet.pts) / self.clock_rate

    def put(self, frame: EncodedFrame, wake: bool = True) -> bool:
        """Queue ``frame``; True when it was queued. With ``wake=False`` the caller wakes
        the consumer later (``wake()``), so that a fan-out can spread the wake-ups."""
        if self._closed:
            return False
        if self._needs_keyframe and not frame.keyframe:
            self.dropped += 1
            return False
        if (
            frame.keyframe
            and self.jump_lag_s is not None
            and len(self)
            and self._lag_s(frame) >= self.jump_lag_s
        ):
            self.dropped += len(self)
            self.jumps += 1
            self._backlog.clear()
            self._frames.clear()
            self._allowance = 0
        if len(self) and not self._stalled and time.monotonic() - self._last_get > STALL_S:
            self._stalled = True
            self.stalls += 1
        if len(self) >= self.max_frames + self._allowance:
            self.dropped += len(self) + 1
            self.skips += 1
            self._backlog.clear()
            self._frames.clear()
            self._allowance = 0
            self._needs_keyframe = True
            if not frame.keyframe:
                return False
            self.dropped -= 1
        self._needs_keyframe = False
        self._frames.append(frame)
        if wake:
            self.wake()
        return True

    def restart(self) -> None:
        """Drop what waits and wait for a keyframe (the publisher's stream restarted)."""
        self._backlog.clear()
        self._frames.clear()
        self._allowance = 0
        self._needs_keyframe = True

    async def get(self) -> EncodedFrame:
        while True:
            if self._backlog or self._frames:
                frame = self._backlog.popleft() if self._backlog else self._frames.popleft()
                self._last_get = time.monotonic()
                self._stalled = False
                if len(self) < self._allowance:
                    self._allowance = len(self)
                return frame
            if self._closed:
                raise QueueClosed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        self._closed = True
        self._backlog.clear()
        self._frames.clear()
        self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
