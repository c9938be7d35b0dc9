"""One socket's bounded outgoing buffer, and how frames reach the wire.

Fan-out serializes an event once into a ``Frame`` (JSON text and, lazily, the complete
websocket frame bytes) and offers it to every local socket without awaiting any of them.

Two ways to the wire, chosen per socket by the web layer, both a ``Sink``:

- ``web.live_sink.DirectSink``: uvicorn's websockets (sans-I/O) protocol, reached through
  the raw ASGI ``send``. A server frame is unmasked, so the bytes are the same for every
  socket (``Frame.wire``): one ``transport.write`` of pre-built bytes per socket.
- ``AsgiSink``: any other server: a writer task awaits ``websocket.send`` per frame.

When the transport is writable and nothing is queued or in flight, a frame is written at
once. Otherwise it waits in the ``Outbox`` by delivery class: state frames replace older
ones of the same key, stream frames drop the oldest past a bound, personal frames are
bounded and overflowing them closes the socket (CLOSE_SLOW) so the client resumes by id.
Whatever is kept leaves in the order it was offered (the hub offers events in id order,
so a client's last id is its resume point). A socket whose queue has not moved for
``stall_s`` is closed the same way: it never stalls the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode

from core.aio import cancel_requested
from live.protocol import CLOSE_SLOW, Delivery


class Frame:
    """One server message, serialized once and shared by every socket it goes to."""

    __slots__ = ("_wire", "delivery", "key", "text")

    def __init__(self, text: str, delivery: Delivery, key: str = "") -> None:
        self.text = text
        self.delivery = delivery
        self.key = key
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """The complete unmasked websocket text frame (built on first use, then shared)."""
        if self._wire is None:
            self._wire = WireFrame(Opcode.TEXT, self.text.encode()).serialize(
                mask=False, extensions=[]
            )
        return self._wire


@dataclass(frozen=True)
class Limits:
    state_keys: int = 512
    stream_frames: int = 256
    personal_frames: int = 128
    stall_s: float = 10.0


class Sink(Protocol):
    def writable(self) -> bool: ...
    def write_now(self, frame: Frame) -> None: ...
    async def send(self, frame: Frame) -> None: ...
    async def close(self, code: int, reason: str) -> None: ...


class AsgiSink:
    """Any ASGI server: awaits one ``websocket.send`` per frame in the writer task."""

    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
    ) -> None:
        self._send_text = send_text
        self._close = close

    def writable(self) -> bool:
        return False

    def write_now(self, frame: Frame) -> None:  # pragma: no cover - never writable
        raise RuntimeError("an ASGI sink is written by its writer task")

    async def send(self, frame: Frame) -> None:
        await self._send_text(frame.text)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await self._close(code, reason)


class Outbox:
    """The bounded backlog of one socket, by delivery class, in the order frames came."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        # Each frame with the number of its offer: pop takes the oldest head of the three.
        self.personal: deque[tuple[int, Frame]] = deque()
        self.state: dict[str, tuple[int, Frame]] = {}  # insertion order is offer order
        self.stream: deque[tuple[int, Frame]] = deque()
        self.dropped = 0
        self._offers = 0

    def __len__(self) -> int:
        return len(self.personal) + len(self.state) + len(self.stream)

    def put(self, frame: Frame) -> bool:
        """Queue ``frame``; False when the socket must be closed (it fell too far behind)."""
        self._offers += 1
        item = (self._offers, frame)
        if frame.delivery is Delivery.PERSONAL:
            if len(self.personal) >= self.limits.personal_frames:
                return False
            self.personal.append(item)
        elif frame.delivery is Delivery.STATE:
            self.state.pop(frame.key, None)
            if len(self.state) >= self.limits.state_keys:
                return False
            self.state[frame.key] = item
        else:
            if len(self.stream) >= self.limits.stream_frames:
                self.stream.popleft()
                self.dropped += 1
            self.stream.append(item)
        return True

    def pop(self) -> Frame | None:
        """The frame offered first of those still kept, whatever its class."""
        # (per queued frame of every socket: plain comparisons, no allocation)
        personal, stream, state = self.personal, self.stream, self.state
        best = personal[0] if personal else None
        if stream and (best is None or stream[0][0] < best[0]):
            best = stream[0]
        if state:
            head = next(iter(state.values()))
            if best is None or head[0] < best[0]:
                best = head
        if best is None:
            return None
        frame = best[1]
        if personal and best is personal[0]:
            personal.popleft()
        elif stream and best is stream[0]:
            stream.popleft()
        else:
            del state[frame.key]
        return frame


class Outlet:
    """A socket's way out: direct writes when possible, else the outbox and a writer task."""

    def __init__(self, sink: Sink, limits: Limits) -> None:
        self.sink = sink
        self.outbox = Outbox(limits)
        self.closed = False
        self.close_code: int | None = None
        self._in_flight = False  # the writer has taken a frame it has not written yet
        self._wake = asyncio.Event()
        self._moved_at = time.monotonic()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def offer(self, frame: Frame) -> None:
        """Deliver or queue ``frame`` without awaiting; never blocks the caller."""
        if self.closed:
            return
        if not self.outbox and not self._in_flight and self.sink.writable():
            self.sink.write_now(frame)
            return
        if not self.outbox:
            self._moved_at = time.monotonic()
        if not self.outbox.put(frame) or self._stalled():
            self.shut(CLOSE_SLOW, "too slow: resume with last_id")
            return
        self._wake.set()

    def _stalled(self) -> bool:
        return time.monotonic() - self._moved_at > self.outbox.limits.stall_s

    def shut(self, code: int, reason: str) -> None:
        """Close the socket (from sync code): the writer task sends the close."""
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self._writer.cancel()
        task = asyncio.get_running_loop().create_task(self.sink.close(code, reason))
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _write_loop(self) -> None:
        while not cancel_requested():
            await self._wake.wait()
            self._wake.clear()
            while (frame := self.outbox.pop()) is not None:
                self._in_flight = True
                try:
                    async with asyncio.timeout(self.outbox.limits.stall_s):
                        await self.sink.send(frame)
                except TimeoutError:
                    self.shut(CLOSE_SLOW, "too slow: resume with last_id")
                    return
                except Exception:
                    self.closed = True
                    return
                self._in_flight = False
                self._moved_at = time.monotonic()

    async def aclose(self) -> None:
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


_background: set[asyncio.Task[None]] = set()
