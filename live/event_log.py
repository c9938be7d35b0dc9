"""A show's Redis keys and its event stream: ids that only grow, a show clock, a cap.

Every key of a show shares the hash tag ``{show_id}`` so a show lives on one Redis Cluster
slot. Stream entries carry the event JSON (without its id), its delivery class and key,
and ``to``: a user id when only that user may see it (personal replies, shadow-banned chat),
or the show's staff and perhaps one user (``live.hub.STAFF``: a question waiting for a
moderator).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from live.protocol import Delivery, dumps

STREAM_MAXLEN = 10_000
MAX_ID_PART = 2**64 - 1  # a stream id is two unsigned 64-bit numbers, ``ms-seq``
_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")  # ASCII digits only, nothing around


def key(show_id: str, name: str) -> str:
    return f"live:{{{show_id}}}:{name}"


def id_tuple(stream_id: str) -> tuple[int, int]:
    """The (ms, seq) of an id Redis wrote, or one ``parse_id`` accepted."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def parse_id(text: str) -> str | None:
    """The canonical ``ms-seq`` form of an id a client sent, or None when it is not one.

    Strict where ``int()`` is lenient: ASCII digits only (no full-width digits, ``_``,
    signs or spaces), ``ms`` or ``ms-seq``, each part within Redis's 64-bit range; so an id
    it accepts is one Redis accepts (``tests/live/test_event_log.py`` asks Redis).
    """
    match = _ID.fullmatch(text)
    if match is None:
        return None
    ms, seq = int(match[1]), int(match[2] or 0)
    if ms > MAX_ID_PART or seq > MAX_ID_PART:
        return None
    return f"{ms}-{seq}"


def valid_id(text: str) -> bool:
    return parse_id(text) is not None


@dataclass(frozen=True)
class Entry:
    id: str
    event: str  # the event JSON object text, without "id"
    delivery: Delivery
    key: str
    to: str

    def text(self) -> str:
        """The message as sent: the event with its stream id first."""
        return '{"id":"' + self.id + '",' + self.event[1:]

    @staticmethod
    def of(stream_id: str, fields: dict[str, str]) -> Entry:
        return Entry(
            stream_id, fields["e"], Delivery(fields["d"]), fields.get("k", ""), fields.get("to", "")
        )


class EventLog:
    def __init__(self, redis: aioredis.Redis, show_id: str, maxlen: int = STREAM_MAXLEN) -> None:
        self.redis = redis
        self.show_id = show_id
        self.name = key(show_id, "stream")
        self.maxlen = maxlen
        self._clock0: int | None = None

    async def clock0(self) -> int:
        """When the show's clock started (ms since the epoch); set once, by the first caller."""
        if self._clock0 is None:
            now = int(time.time() * 1000)
            await self.redis.set(key(self.show_id, "clock0"), now, nx=True)
            value = cast(str | None, await self.redis.get(key(self.show_id, "clock0")))
            self._clock0 = int(value) if value is not None else now
        return self._clock0

    async def start_clock(self, at_ms: int | None = None) -> None:
        at_ms = at_ms if at_ms is not None else int(time.time() * 1000)
        await self.redis.set(key(self.show_id, "clock0"), at_ms, nx=True)
        self._clock0 = None

    async def clock_ms(self) -> int:
        return int(time.time() * 1000) - await self.clock0()

    async def publish(
        self,
        kind: str,
        payload: dict[str, Any],
        delivery: Delivery = Delivery.FEED,
        *,
        key_: str = "",
        to: str = "",
    ) -> str:
        """Append one event; returns its id. The stream is capped (MAXLEN ~)."""
        event = {"type": kind, "clock_ms": await self.clock_ms(), **payload}
        fields: dict[Any, Any] = {"e": dumps(event), "d": delivery.value, "k": key_, "to": to}
        stream_id = await self.redis.xadd(self.name, fields, maxlen=self.maxlen, approximate=True)
        return str(stream_id)

    async def last_id(self) -> str:
        rows = await self.redis.xrevrange(self.name, "+", "-", count=1)
        return str(rows[0][0]) if rows else "0-0"

    async def holds(self, stream_id: str) -> bool:
        """Whether the stream has an entry with exactly this (canonical) id."""
        return bool(await self.redis.xrange(self.name, stream_id, stream_id, count=1))

    async def first_id(self) -> str | None:
        rows = await self.redis.xrange(self.name, "-", "+", count=1)
        return str(rows[0][0]) if rows else None

    async def after(self, last_id: str, count: int = STREAM_MAXLEN) -> list[Entry]:
        """Entries strictly after ``last_id`` (XRANGE with an exclusive start)."""
        rows: Any = await self.redis.xrange(self.name, f"({last_id}", "+", count=count)
        return [Entry.of(str(i), f) for i, f in rows]

    async def recent(self, count: int, upto: str = "+") -> list[Entry]:
        """The last ``count`` entries, oldest first, none after ``upto``."""
        rows: Any = await self.redis.xrevrange(self.name, upto, "-", count=count)
        return [Entry.of(str(i), f) for i, f in reversed(rows)]

    async def read(self, last_id: str, block_ms: int, count: int = 1000) -> list[Entry]:
        """Block until entries after ``last_id`` arrive (XREAD BLOCK)."""
        reply: Any = await self.redis.xread({self.name: last_id}, count=count, block=block_ms)
        if not reply:
            return []
        out: list[Entry] = []
        for _name, rows in reply:
            out.extend(Entry.of(str(i), f) for i, f in rows)
        return out
