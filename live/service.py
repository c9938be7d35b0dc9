"""The live service: one per process. It owns the show rooms and serves each socket.

A socket's requests are handled by its ``Session`` (live/session.py), which dispatches each
to its handler (live/handlers/). The service keeps the rooms of this process
(live/rooms.py), collects a room nobody has been connected to for a while, and takes the
HTTP API's hooks: a show's status, its video state and its catalog changed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.show_state import ShowStatus
from core.aio import stop_tasks
from core.errors import CodedError
from core.roles import Role
from live.event_log import EventLog, key
from live.handlers import HANDLERS
from live.hub import STAFF, Member, new_process_id
from live.limits import RateLimits
from live.moderation import Moderation
from live.outbox import Limits, Outlet, Sink
from live.ports import CheckoutPort
from live.protocol import Delivery, ProtocolError, dumps
from live.rooms import Room
from live.session import Participant, Session
from live.shared_limits import SharedLimits

log = logging.getLogger("liveshop.live")

MAX_CONCURRENT_WORK = 48
IDLE_ROOM_S = 60.0
# A publisher's health is kept this long after its last report (it reports every 2 s).
HEALTH_TTL_S = 30


def health_changed(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether the staff hear of a new health report: its advice, codec or publisher kind
    changed, the keyframe interval moved by half a second or more, or the bitrate by a
    quarter (a report every 2 s otherwise would fill the show's event stream)."""
    if any(before.get(k) != now.get(k) for k in ("advice", "codec", "stream_key")):
        return True
    a, b = before.get("keyframe_interval_s"), now.get("keyframe_interval_s")
    if (a is None) != (b is None) or (a is not None and b is not None and abs(a - b) >= 0.5):
        return True
    rate_before, rate_now = int(before.get("bitrate_bps") or 0), int(now.get("bitrate_bps") or 0)
    return abs(rate_now - rate_before) > 0.25 * max(rate_before, 1)


class Socket(Protocol):
    async def receive_text(self) -> str | None:
        """The next text message, or None once the client has gone."""
        ...


class LiveService:
    def __init__(
        self,
        redis: aioredis.Redis,
        sessions: async_sessionmaker[AsyncSession],
        checkout: CheckoutPort,
        *,
        limits: Limits | None = None,
        rate_limits: RateLimits | None = None,
        questions_public: bool = False,
        auto_answers: bool = True,
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.checkout = checkout
        self.limits = limits or Limits()
        self.rate_limits = rate_limits or RateLimits()
        self.questions_public = questions_public  # (LIVESHOP_QUESTIONS_PUBLIC)
        self.auto_answers = auto_answers  # (LIVESHOP_AUTO_ANSWERS)
        self.shared_limits = SharedLimits(redis)
        self.process_id = new_process_id()
        self.rooms: dict[str, Room] = {}
        self.idle_room_s = IDLE_ROOM_S
        self._collectors: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        # A crowd joining or posting at once must not take every connection of the Redis
        # pool (100 by default; each show's reader holds one): joins and requests queue
        # here instead.
        self.busy = asyncio.Semaphore(MAX_CONCURRENT_WORK)
        # Told when a moderator removes (bans) a viewer from a show: (show_id, user_id).
        # The app closes the viewer's video sessions there.
        self.removal_listeners: list[Callable[[str, str], Awaitable[None]]] = []

    async def room(self, show_id: str) -> Room:
        """The show's room in this process (created, with its reader, on first use)."""
        room = self.rooms.get(show_id)
        if room is not None:
            return room
        async with self._lock:
            if show_id not in self.rooms:
                try:
                    status = await self.checkout.show_status(show_id)
                except CodedError:
                    raise ProtocolError("show_not_found", "no such show") from None
                await self.redis.set(key(show_id, "status"), status.value)
                room = Room(
                    self.redis,
                    self.sessions,
                    self.checkout,
                    show_id,
                    process_id=self.process_id,
                    rate_limits=lambda: self.rate_limits,
                    questions_public=self.questions_public,
                    auto_answers=self.auto_answers,
                )
                room.on_removed = lambda user_id: self._removed(show_id, user_id)
                self.rooms[show_id] = room
            return self.rooms[show_id]

    async def close(self) -> None:
        await stop_tasks(list(self._collectors))
        rooms, self.rooms = list(self.rooms.values()), {}
        for room in rooms:
            await room.hub.close()

    async def _removed(self, show_id: str, user_id: str) -> None:
        for listener in self.removal_listeners:
            try:
                await listener(show_id, user_id)
            except Exception:
                log.exception("removal listener failed", extra={"show": show_id})

    async def is_banned(self, show_id: str, user_id: str) -> bool:
        """Whether ``user_id`` was removed (banned) from the show (asked by video access)."""
        return await Moderation(self.redis, self.sessions, show_id).is_banned(user_id)

    # -- hooks from the HTTP API -----------------------------------------------------------

    async def show_status_changed(self, show_id: str, status: ShowStatus) -> None:
        event_log = EventLog(self.redis, show_id)
        if status is ShowStatus.LIVE:
            await event_log.start_clock()
        await self.redis.set(key(show_id, "status"), status.value)
        # replay_url: room for a replay link once ended shows are kept for replay
        await event_log.publish(
            "show_status",
            {"status": status.value, "replay_url": None},
            Delivery.STATE,
            key_="status",
        )

    async def video_state_changed(self, show_id: str, state: str) -> None:
        """The host's video went live, reconnecting or offline (reported by signaling)."""
        await self.redis.set(key(show_id, "video"), state)
        if state not in ("live", "reconnecting"):
            await self.redis.delete(key(show_id, "video_health"), key(show_id, "health_sent"))
        await EventLog(self.redis, show_id).publish(
            "stream", {"state": state}, Delivery.STATE, key_="stream"
        )

    async def video_health_reported(self, show_id: str, health: dict[str, Any]) -> None:
        """The publisher's health (every few seconds while it sends): kept for the staff's
        snapshots for ``HEALTH_TTL_S``, and announced to the staff when it changed enough
        to matter (``health_changed``), not on every report."""
        text = dumps(health)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(key(show_id, "health_sent"))
            pipe.set(key(show_id, "video_health"), text, ex=HEALTH_TTL_S)
            sent, _ = await pipe.execute()
        if sent is not None and not health_changed(json.loads(sent), health):
            await self.redis.expire(key(show_id, "health_sent"), HEALTH_TTL_S)
            return
        await self.redis.set(key(show_id, "health_sent"), text, ex=HEALTH_TTL_S)
        await EventLog(self.redis, show_id).publish(
            "video_health", {"health": health}, Delivery.STATE, key_="video_health", to=STAFF
        )

    async def catalog_changed(self, show_id: str) -> None:
        room = await self.room(show_id)
        room.catalog_changed()
        cards = await room.cards.pinned()
        await room.event_log.publish(
            "catalog_changed", {"cards": cards}, Delivery.STATE, key_="catalog"
        )

    # -- one socket --------------------------------------------------------------------------

    async def serve(
        self,
        socket: Socket,
        sink: Sink,
        show_id: str,
        who: Participant | None,
        last_id: str | None,
    ) -> Outlet:
        """Serve one joined socket until it leaves; returns its outlet (closed or not)."""
        room = await self.room(show_id)
        room.active += 1  # no await since room(): an idle collection cannot slip between
        outlet = Outlet(sink, self.limits)
        member = Member(who.user_id if who else "", who.role if who else None, outlet)
        try:
            member.send(
                {
                    "type": "hello",
                    "show_id": show_id,
                    "user_id": member.user_id or None,
                    "role": who.role.value if who else "anonymous",
                }
            )
            async with self.busy:
                if who is not None and who.role is Role.VIEWER:  # (for the moderators' lists)
                    await room.moderation.remember_name(who.user_id, who.name)
                await room.hub.join(member, last_id)
            session = Session(
                room,
                member,
                who,
                handlers=HANDLERS,
                busy=self.busy,
                shared_limits=self.shared_limits,
            )
            while not outlet.closed:
                raw = await socket.receive_text()
                if raw is None:
                    break
                await session.handle(raw)
        finally:
            room.active -= 1
            room.hub.leave(member)
            room.release_buckets(member.user_id)
            if room.active == 0:
                self._collect_later(show_id, room)
            await outlet.aclose()
        return outlet

    def _collect_later(self, show_id: str, room: Room) -> None:
        task = asyncio.get_running_loop().create_task(self._collect(show_id, room))
        self._collectors.add(task)
        task.add_done_callback(self._collectors.discard)

    async def _collect(self, show_id: str, room: Room) -> None:
        """Stop an idle room's reader once nobody has been connected for idle_room_s."""
        await asyncio.sleep(self.idle_room_s)
        if room.active == 0 and self.rooms.get(show_id) is room:
            del self.rooms[show_id]
            await room.hub.close()
