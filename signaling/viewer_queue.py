"""One viewer's bounded queue of encoded frames, with the slow-consumer policy.

Policy: at most ``max_frames`` live frames wait for a viewer. A frame that arrives at a
full queue empties it, and every frame is then dropped until the next keyframe: a viewer
that falls behind skips ahead to a picture it can decode, and never slows the publisher or
the other viewers (``put`` never blocks). The first frame a viewer gets is a keyframe.

The group of pictures given to a new viewer (``prime``) is a backlog outside that bound:
it is handed out first, as fast as the sender takes it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from .media import EncodedFrame


class QueueClosed(Exception):
    """The queue was closed; no more frames will come."""


class ViewerQueue:
    def __init__(self, max_frames: int) -> None:
        if max_frames < 1:
            raise ValueError("max_frames must be at least 1")
        self.max_frames = max_frames
        self.dropped = 0
        self.skips = 0
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
        self._backlog.extend(frames)
        self._needs_keyframe = False
        self.wake()

    def put(self, frame: EncodedFrame, wake: bool = True) -> bool:
        """Queue ``frame``; True when it was queued. With ``wake=False`` the caller wakes
        the consumer later (``wake()``), so that a fan-out can spread the wake-ups."""
        if self._closed:
            return False
        if self._needs_keyframe and not frame.keyframe:
            self.dropped += 1
            return False
        if len(self._frames) >= self.max_frames:
            self.dropped += len(self) + 1
            self.skips += 1
            self._backlog.clear()
            self._frames.clear()
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
        self._needs_keyframe = True

    async def get(self) -> EncodedFrame:
        while True:
            if self._backlog:
                return self._backlog.popleft()
            if self._frames:
                return self._frames.popleft()
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
