"""One socket's requests: who sends them, and the dispatch of each to its handler.

A frame is parsed (live/protocol.py), its type looked up in ``REQUESTS`` for the roles that
may send it, checked against the sender's rate limits, and handed to the handler the table
names for it (live/handlers/), with a ``Context`` and the request's fields. It is answered
with one reply to that socket only; what others must see the handler appends to the
show's stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from core.errors import INTERNAL_ERROR, CodedError, ws_error
from core.roles import Role
from live.hub import Member
from live.ports import CheckoutPort
from live.protocol import REQUESTS, ProtocolError, parse
from live.rooms import Room
from live.shared_limits import SHARED_KINDS, SharedLimits

log = logging.getLogger("liveshop.live")

# What a show that has ended refuses (show_ended); the cart, buy and checkout requests are
# refused by checkout itself with the same code. The cart can still be viewed.
CLOSED_WHEN_ENDED = frozenset(
    {"chat", "react", "tap", "ask", "upvote", "vote", "pin", "start_deal", "open_poll"}
)


@dataclass(frozen=True)
class Participant:
    user_id: str
    name: str
    role: Role


@dataclass(frozen=True)
class Context:
    """What a handler acts on: the show's room and the (signed-in) sender."""

    room: Room
    who: Participant

    @property
    def uid(self) -> str:
        return self.who.user_id

    @property
    def redis(self) -> aioredis.Redis:
        return self.room.redis

    @property
    def checkout(self) -> CheckoutPort:
        return self.room.checkout

    async def log(self, action: str, **kwargs: Any) -> None:
        await self.room.moderation.log(self.uid, action, **kwargs)

    def logged(self, action: str, **kwargs: Any) -> AbstractAsyncContextManager[None]:
        """The action in the body and its log row as one unit (Moderation.logged)."""
        return self.room.moderation.logged(self.uid, action, **kwargs)


# A request's handler: the context, then the request's fields as keyword arguments (a
# required field is a parameter without default, an optional one has a default); it
# returns the reply's fields, or None.
Handler = Callable[..., Awaitable[dict[str, Any] | None]]


class Session:
    """Requests of one socket."""

    def __init__(
        self,
        room: Room,
        member: Member,
        who: Participant | None,
        *,
        handlers: Mapping[str, Handler],
        busy: asyncio.Semaphore,
        shared_limits: SharedLimits,
    ) -> None:
        self.room = room
        self.member = member
        self.who = who
        self.handlers = handlers
        self.busy = busy
        self.shared_limits = shared_limits
        # Per viewer (all of their sockets on this process share the buckets).
        self.buckets = room.buckets_of(who.user_id if who else "")

    def reply(self, ref: str | None, **fields: Any) -> None:
        self.member.send({"type": "ok", "ref": ref, **fields})

    async def _within_limits(self, kind: str) -> bool:
        """This process's bucket first (no Redis call for a message it refuses), then, for
        what every viewer sees, the viewer's bucket over all processes."""
        bucket = self.buckets.get(kind)
        if bucket is None:
            return True
        if not bucket.take():
            return False
        if kind not in SHARED_KINDS or self.who is None:
            return True
        allowed = await self.shared_limits.allow(
            self.room.show_id, self.who.user_id, kind, bucket.rate, bucket.burst
        )
        if not allowed:  # (the two clocks differ by a little: refused once, not twice)
            bucket.tokens = min(bucket.burst, bucket.tokens + 1)
        return allowed

    def error(
        self,
        ref: str | None,
        code: str,
        message: str,
        fields: dict[str, str],
        extra: dict[str, object] | None = None,
    ) -> None:
        self.member.send(ws_error(code, message, ref, fields, extra))

    async def handle(self, raw: str) -> None:
        ref: str | None = None
        try:
            ref, kind, fields = parse(raw)
            spec = REQUESTS[kind]
            if self.who is None:
                raise ProtocolError("auth_required", "sign in (a viewer token) to take part")
            if self.who.role not in spec.roles:
                raise ProtocolError("forbidden_role", f"a {self.who.role} may not {kind}")
            if not await self._within_limits(kind):
                raise ProtocolError("rate_limited", f"too many {kind} messages; slow down")
            if kind in CLOSED_WHEN_ENDED and await self.room.ended():
                raise ProtocolError("show_ended", "the show has ended")
            async with self.busy:
                result = await self.handlers[kind](Context(self.room, self.who), **fields)
            if spec.reply:
                self.reply(ref, **(result or {}))
        except ProtocolError as exc:
            self.error(ref or exc.ref, exc.code, exc.message, exc.fields, exc.extra)
        except CodedError as exc:  # checkout's refusals, illegal transitions
            self.error(ref, exc.code, exc.message, exc.fields, exc.extra)
        except Exception:
            log.exception("live request failed")
            self.error(ref, INTERNAL_ERROR, "something went wrong on our side", {})
