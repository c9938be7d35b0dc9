"""The outbox's policy per delivery class, frames leaving in the order they were offered,
and the shared frame bytes."""

from __future__ import annotations

import asyncio

from websockets.frames import Frame as WireFrame

from live.outbox import Frame, Limits, Outbox, Outlet
from live.protocol import Delivery


def test_state_replaces_older_of_the_same_key() -> None:
    box = Outbox(Limits(state_keys=2))
    assert box.put(Frame("a1", Delivery.STATE, "a"))
    assert box.put(Frame("b1", Delivery.STATE, "b"))
    assert box.put(Frame("a2", Delivery.STATE, "a"))
    assert [box.pop().text for _ in range(2)] == ["b1", "a2"]  # type: ignore[union-attr]
    assert box.pop() is None


def test_stream_drops_oldest_personal_overflow_closes() -> None:
    box = Outbox(Limits(stream_frames=2, personal_frames=1))
    for n in range(4):
        assert box.put(Frame(f"s{n}", Delivery.FEED))
    assert box.dropped == 2
    assert box.put(Frame("p0", Delivery.PERSONAL))
    assert not box.put(Frame("p1", Delivery.PERSONAL))
    assert [box.pop().text for _ in range(3)] == ["s2", "s3", "p0"]  # type: ignore[union-attr]


def test_frames_leave_in_the_order_they_were_offered() -> None:
    box = Outbox(Limits())
    offered = [
        Frame("f1", Delivery.FEED),
        Frame("a2", Delivery.STATE, "a"),
        Frame("p3", Delivery.PERSONAL),
        Frame("b4", Delivery.STATE, "b"),
        Frame("f5", Delivery.FEED),
        Frame("a6", Delivery.STATE, "a"),  # replaces a2, and goes out where it came
        Frame("p7", Delivery.PERSONAL),
    ]
    for frame in offered:
        assert box.put(frame)
    popped = [box.pop() for _ in range(6)]
    assert [f.text for f in popped if f] == ["f1", "p3", "b4", "f5", "a6", "p7"]
    assert box.pop() is None and not box


class _Wire:
    """A sink whose transport stops taking frames while one is in flight (as uvicorn's
    protocol pauses writing), then takes it again."""

    def __init__(self) -> None:
        self.open = False
        self.flowing = asyncio.Event()
        self.written: list[str] = []

    def writable(self) -> bool:
        return self.open

    def write_now(self, frame: Frame) -> None:
        self.written.append(frame.text)

    async def send(self, frame: Frame) -> None:
        await self.flowing.wait()
        self.written.append(frame.text)

    async def close(self, code: int, reason: str) -> None:
        self.open = False


async def test_a_frame_in_flight_is_not_overtaken() -> None:
    wire = _Wire()
    outlet = Outlet(wire, Limits())
    outlet.offer(Frame("first", Delivery.FEED))  # not writable: queued, the writer takes it
    await asyncio.sleep(0)
    wire.open = True  # writable again before the writer's send has finished
    outlet.offer(Frame("second", Delivery.FEED))
    wire.flowing.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert wire.written == ["first", "second"]
    await outlet.aclose()


def test_wire_bytes_are_one_unmasked_text_frame() -> None:
    frame = Frame('{"type":"chat","text":"hé"}', Delivery.FEED)
    assert frame.wire is frame.wire  # built once, shared
    assert frame.wire[0] == 0x81 and frame.wire[1] & 0x80 == 0
    assert frame.wire[2:] == '{"type":"chat","text":"hé"}'.encode()
    assert WireFrame(0x1, frame.text.encode()).serialize(mask=False, extensions=[]) == frame.wire  # type: ignore[arg-type]
