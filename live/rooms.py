"""A show's room in one process: its hub, its features, its viewers' rate-limit buckets,
the snapshot a joining socket gets (built at most once per SNAPSHOT_TTL_S) and the show's
product ids (read at most once per PRODUCT_IDS_TTL_S)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.currency import exponent
from core.errors import CodedError
from live.answering import AutoAnswers
from live.cards import Cards
from live.event_log import Entry, EventLog, key
from live.hub import STAFF_ROLES, Member, ShowHub
from live.limits import Bucket, RateLimits
from live.moderation import Moderation
from live.polls import Polls
from live.ports import CheckoutPort
from live.questions import Questions

SNAPSHOT_TTL_S = 0.5
PRODUCT_IDS_TTL_S = 2.0
ENDED_TTL_S = 0.5


class Room:
    """One show in this process: its hub and its features.

    ``rate_limits`` answers the service's rules as they are now (they may be changed on a
    running service); a viewer's buckets are made from them on first use.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        sessions: async_sessionmaker[AsyncSession],
        checkout: CheckoutPort,
        show_id: str,
        *,
        process_id: str,
        rate_limits: Callable[[], RateLimits],
        questions_public: bool = False,
        auto_answers: bool = True,
    ) -> None:
        self.show_id = show_id
        self.event_log = EventLog(redis, show_id)
        self.cards = Cards(redis, show_id, checkout)
        self.questions = Questions(redis, sessions, show_id, public=questions_public)
        self.answers = AutoAnswers(
            redis, show_id, checkout, self.questions, self.cards.pins, enabled=auto_answers
        )
        self.moderation = Moderation(redis, sessions, show_id)
        self.polls = Polls(redis, show_id)
        self.hub = ShowHub(redis, show_id, self.snapshot, process_id=process_id)
        self.checkout = checkout
        self.redis = redis
        self._rate_limits = rate_limits
        self.active = 0  # sockets being served in this process
        self._ended = False
        self._ended_read_at = -math.inf
        # Set by the service: a viewer removed from the show (banned) loses their video.
        self.on_removed: Callable[[str], Awaitable[None]] | None = None
        self.buckets: dict[str, dict[str, Bucket]] = {}
        self._snapshot_lock = asyncio.Lock()
        self._cached: tuple[str, dict[str, Any], list[Entry], set[str], list[Any]] | None = None
        self._cached_at = 0.0
        self._cached_version = -1
        self._product_ids: frozenset[str] = frozenset()
        self._currencies: dict[str, int] = {}
        self._product_ids_at = -math.inf
        self._product_ids_lock = asyncio.Lock()

    async def product_ids(self) -> frozenset[str]:
        """The show's product ids, read through checkout at most once per
        PRODUCT_IDS_TTL_S (a tap storm must not read the catalog per tap; the taps that
        find it stale wait for one read), and at once after this process saw it change."""
        await self._read_catalog()
        return self._product_ids

    async def currencies(self) -> dict[str, int]:
        """The exponent (ISO 4217 minor unit) of each currency of the show's catalog, from
        the same cached read as ``product_ids``."""
        await self._read_catalog()
        return dict(self._currencies)

    async def _read_catalog(self) -> None:
        if time.monotonic() - self._product_ids_at <= PRODUCT_IDS_TTL_S:
            return
        async with self._product_ids_lock:
            if time.monotonic() - self._product_ids_at > PRODUCT_IDS_TTL_S:
                products = await self.checkout.products(self.show_id)
                self._product_ids = frozenset(p.id for p in products)
                self._currencies = {
                    v.currency: exponent(v.currency) for p in products for v in p.variants
                }
                self._product_ids_at = time.monotonic()

    def catalog_changed(self) -> None:
        """The show's catalog changed: the next ``product_ids`` reads it again."""
        self._product_ids_at = -math.inf

    def buckets_of(self, user_id: str) -> dict[str, Bucket]:
        """The rate-limit buckets of one viewer in this show, shared by their sockets."""
        if user_id not in self.buckets:
            rules = self._rate_limits().rules
            self.buckets[user_id] = {name: Bucket(r, b) for name, (r, b) in rules.items()}
        return self.buckets[user_id]

    def release_buckets(self, user_id: str) -> None:
        """The viewer's last socket here left: forget their buckets once they are full
        again, not before (reconnecting must not give a fresh burst)."""
        buckets = self.buckets.get(user_id)
        if buckets is None or self.hub.members_of(user_id):
            return
        wait = max((bucket.until_full_s() for bucket in buckets.values()), default=0.0)
        if wait <= 0:
            del self.buckets[user_id]
        else:
            asyncio.get_running_loop().call_later(wait, self.release_buckets, user_id)

    async def snapshot(self, member: Member) -> tuple[str, dict[str, Any]]:
        """(the stream id it is current to, the snapshot) for ``member``.

        The shared part is built at most once per SNAPSHOT_TTL_S per process, and again
        when the hub has read a change (a crowd joining at once costs one build), together
        with the stream id read before it: the hub sends every event after that id, so a
        cached snapshot never leaves a gap.
        """
        async with self._snapshot_lock:
            cached = self._cached
            stale = time.monotonic() - self._cached_at > SNAPSHOT_TTL_S
            if cached is None or stale or self._cached_version != self.hub.version:
                self._cached_version = self.hub.version
                self._cached = cached = await self._build_snapshot()
                self._cached_at = time.monotonic()
            since, shared, recent, deleted, pending = cached
        # Questions waiting for a moderator: the staff see them all, an asker their own.
        staff: dict[str, Any] = {}
        if member.role in STAFF_ROLES:
            waiting = pending
            health = await self.redis.get(key(self.show_id, "video_health"))
            staff["video_health"] = None if health is None else json.loads(health)
        else:
            waiting = [q for q in pending if member.user_id and q["viewer_id"] == member.user_id]
        chat = []
        for entry in recent:
            if not member.sees(entry) or entry.id in deleted:
                continue
            event = json.loads(entry.event)
            if event["type"] == "chat":
                chat.append({"id": entry.id, **event})
        poll = shared.get("poll")
        my_vote = None
        if poll and member.user_id:
            my_vote = await self.polls.choice(poll["poll_id"], member.user_id)
        return since, {
            **shared,
            "questions": waiting + shared["questions"],
            "my_vote": my_vote,
            "clock_ms": await self.event_log.clock_ms(),
            # the show clock's origin (epoch ms, this server's clock): an event's wall time
            # is clock0_ms + its clock_ms, what an HLS page sets against the picture's
            # program date time (web/static/viewer_sync.js)
            "clock0_ms": await self.event_log.clock0(),
            "chat": chat[-50:],
            "viewers": {"now": self.hub.viewers_now, "peak": self.hub.viewers_peak},
            **staff,
        }

    async def ended(self) -> bool:
        """Whether the show has ended (read at most once per ENDED_TTL_S until it has:
        an end is for good)."""
        if self._ended:
            return True
        if time.monotonic() - self._ended_read_at > ENDED_TTL_S:
            self._ended = await self._status() == "ended"
            self._ended_read_at = time.monotonic()
        return self._ended

    async def _status(self) -> str | None:
        """The show's status: Redis keeps it once it changed; before that, ask checkout."""
        raw = await self.redis.get(key(self.show_id, "status"))
        status = None if raw is None else str(raw)
        if status is None:
            try:
                status = (await self.checkout.show_status(self.show_id)).value
            except CodedError:  # (show_not_found: the show is gone)
                return None
            await self.redis.set(key(self.show_id, "status"), status, nx=True)
        return status

    async def _build_snapshot(
        self,
    ) -> tuple[str, dict[str, Any], list[Entry], set[str], list[Any]]:
        since = await self.event_log.last_id()
        deals: list[dict[str, Any]] = []
        with contextlib.suppress(CodedError):
            deals = [d.to_json() for d in await self.checkout.deals(self.show_id)]
        deleted = {str(d) for d in await self.redis.smembers(key(self.show_id, "deleted"))}
        currencies: dict[str, int] = {}
        with contextlib.suppress(CodedError):
            currencies = await self.currencies()
        totals = await self.redis.hgetall(key(self.show_id, "reactions_total"))
        shared = {
            "show_id": self.show_id,
            "status": await self._status(),
            "replay_url": None,  # (room for a replay once shows are recorded for replay)
            "stream": await self.redis.get(key(self.show_id, "video")) or "offline",
            "cards": await self.cards.pinned(),
            "deals": deals,
            "poll": await self.polls.get(),
            # (answered ones too: they stay after a reload)
            "questions": await self.questions.seen_by_everyone(),
            "questions_public": self.questions.public,
            "reactions": {str(k): int(v) for k, v in totals.items()},
            "currencies": currencies,
        }
        pending = await self.questions.pending()
        # Chat up to ``since`` only: the hub sends what came after it, and a chat in both
        # the snapshot and that catch-up would reach the client twice.
        recent = await self.event_log.recent(300, upto=since)
        return since, shared, recent, deleted, pending
