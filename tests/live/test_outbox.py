"""The outbox's policy per delivery class, and the shared frame bytes."""

from __future__ import annotations

from websockets.frames import Frame as WireFrame

from live.outbox import Frame, Limits, Outbox
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
    assert [box.pop().text for _ in range(3)] == ["p0", "s2", "s3"]  # type: ignore[union-attr]


def test_wire_bytes_are_one_unmasked_text_frame() -> None:
    frame = Frame('{"type":"chat","text":"hé"}', Delivery.FEED)
    assert frame.wire is frame.wire  # built once, shared
    assert frame.wire[0] == 0x81 and frame.wire[1] & 0x80 == 0
    assert frame.wire[2:] == '{"type":"chat","text":"hé"}'.encode()
    assert WireFrame(0x1, frame.text.encode()).serialize(mask=False, extensions=[]) == frame.wire  # type: ignore[arg-type]
