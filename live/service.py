"""The live service: one per process. It owns the show hubs and serves each socket.

A socket's requests are parsed (live/protocol.py), checked against the sender's role and
rate limits, acted on, and answered with one reply to that socket only. Anything others
must see is appended to the show's stream and reaches every process's sockets from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import catalog
from checkout.models import Show
from checkout.show_state import ShowStatus
from core.aio import stop_tasks
from core.errors import INTERNAL_ERROR, CodedError
from core.roles import Role
from live.cards import Cards
from live.event_log import Entry, EventLog, key, valid_id
from live.hub import Member, ShowHub, new_process_id
from live.models import QuestionStatus
from live.moderation import Moderation
from live.outbox import Limits, Outlet, Sink
from live.polls import Polls
from live.ports import CheckoutPort
from live.protocol import REQUESTS, Delivery, ProtocolError, clean_text, parse
from live.questions import Questions
from live.shared_limits import SHARED_KINDS, SharedLimits

log = logging.getLogger("liveshop.live")

SNAPSHOT_TTL_S = 0.5
MAX_CONCURRENT_WORK = 48
IDLE_ROOM_S = 60.0

ErrorShape = Callable[[str, str, "str | None", "dict[str, str] | None"], dict[str, Any]]


class Socket(Protocol):
    async def receive_text(self) -> str | None:
        """The next text message, or None once the client has gone."""
        ...


@dataclass(frozen=True)
class Participant:
    user_id: str
    name: str
    role: Role


@dataclass(frozen=True)
class RateLimits:
    """Per-viewer token buckets (per show, per process): (refill per second, burst)."""

    rules: dict[str, tuple[float, int]] = field(
        default_factory=lambda: {
            "chat": (1.0, 5),
            "ask": (0.2, 3),
            "react": (10.0, 30),
            "tap": (5.0, 10),
            "upvote": (2.0, 10),
        }
    )


class Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def until_full_s(self) -> float:
        """Seconds until the bucket is full again (0: it is)."""
        missing = self.burst - self.tokens - (time.monotonic() - self.at) * self.rate
        return max(0.0, missing / self.rate) if self.rate > 0 else 0.0


class Room:
    """One show in this process: its hub and its features."""

    def __init__(self, service: LiveService, show_id: str) -> None:
        self.show_id = show_id
        self.event_log = EventLog(service.redis, show_id)
        self.cards = Cards(service.redis, service.sessions, show_id, service.checkout)
        self.questions = Questions(service.redis, service.sessions, show_id)
        self.moderation = Moderation(service.redis, service.sessions, show_id)
        self.polls = Polls(service.redis, show_id)
        self.hub = ShowHub(service.redis, show_id, self.snapshot, process_id=service.process_id)
        self.checkout = service.checkout
        self.redis = service.redis
        self._service = service
        self.active = 0  # sockets being served in this process
        self.buckets: dict[str, dict[str, Bucket]] = {}
        self._snapshot_lock = asyncio.Lock()
        self._cached: tuple[str, dict[str, Any], list[Entry], set[str]] | None = None
        self._cached_at = 0.0
        self._cached_version = -1

    def buckets_of(self, user_id: str) -> dict[str, Bucket]:
        """The rate-limit buckets of one viewer in this show, shared by their sockets."""
        if user_id not in self.buckets:
            rules = self._service.rate_limits.rules
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
            since, shared, recent, deleted = cached
        chat = []
        for entry in recent:
            if not member.sees(entry) or entry.id in deleted:
                continue
            event = json.loads(entry.event)
            if event["type"] == "chat":
                chat.append({"id": entry.id, **event})
        return since, {
            **shared,
            "clock_ms": await self.event_log.clock_ms(),
            "chat": chat[-50:],
            "viewers": {"now": self.hub.viewers_now, "peak": self.hub.viewers_peak},
        }

    async def _status(self) -> str | None:
        """The show's status: Redis keeps it once it changed; before that, ask SQL."""
        raw = await self.redis.get(key(self.show_id, "status"))
        status = None if raw is None else str(raw)
        if status is None:
            async with self._service.sessions() as session:
                show = await session.get(Show, self.show_id)
            if show is not None:
                status = show.status.value
                await self.redis.set(key(self.show_id, "status"), status, nx=True)
        return status

    async def _build_snapshot(self) -> tuple[str, dict[str, Any], list[Entry], set[str]]:
        since = await self.event_log.last_id()
        deals: list[dict[str, Any]] = []
        if self.checkout is not None:
            with contextlib.suppress(CodedError):
                deals = [d.to_json() for d in await self.checkout.deals(self.show_id)]
        deleted = {str(d) for d in await self.redis.smembers(key(self.show_id, "deleted"))}
        shared = {
            "show_id": self.show_id,
            "status": await self._status(),
            "stream": await self.redis.get(key(self.show_id, "video")) or "offline",
            "cards": await self.cards.pinned(),
            "deals": deals,
            "poll": await self.polls.get(),
            "questions": await self.questions.queue(limit=10),
        }
        return since, shared, await self.event_log.recent(300), deleted


class LiveService:
    def __init__(
        self,
        redis: aioredis.Redis,
        sessions: async_sessionmaker[AsyncSession],
        checkout: CheckoutPort | None,
        *,
        error_shape: ErrorShape,
        limits: Limits | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.checkout = checkout
        self.error_shape = error_shape
        self.limits = limits or Limits()
        self.rate_limits = rate_limits or RateLimits()
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

    async def room(self, show_id: str) -> Room:
        """The show's room in this process (created, with its reader, on first use)."""
        room = self.rooms.get(show_id)
        if room is not None:
            return room
        async with self._lock:
            if show_id not in self.rooms:
                async with self.sessions() as session:
                    try:
                        show = await catalog.get_show(session, show_id)
                    except CodedError:
                        raise ProtocolError("show_not_found", "no such show") from None
                await self.redis.set(key(show_id, "status"), show.status.value)
                self.rooms[show_id] = Room(self, show_id)
            return self.rooms[show_id]

    async def close(self) -> None:
        await stop_tasks(list(self._collectors))
        rooms, self.rooms = list(self.rooms.values()), {}
        for room in rooms:
            await room.hub.close()

    # -- hooks from the HTTP API -----------------------------------------------------------

    async def show_status_changed(self, show_id: str, status: ShowStatus) -> None:
        event_log = EventLog(self.redis, show_id)
        if status is ShowStatus.LIVE:
            await event_log.start_clock()
        await self.redis.set(key(show_id, "status"), status.value)
        await event_log.publish(
            "show_status", {"status": status.value}, Delivery.STATE, key_="status"
        )

    async def video_state_changed(self, show_id: str, state: str) -> None:
        """The host's video went live, reconnecting or offline (reported by signaling)."""
        await self.redis.set(key(show_id, "video"), state)
        await EventLog(self.redis, show_id).publish(
            "stream", {"state": state}, Delivery.STATE, key_="stream"
        )

    async def catalog_changed(self, show_id: str) -> None:
        room = await self.room(show_id)
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
        if last_id is not None and not valid_id(last_id):
            last_id = None
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
                await room.hub.join(member, last_id)
            session = _Session(self, room, member, who)
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


class _Session:
    """Requests of one socket."""

    def __init__(self, service: LiveService, room: Room, member: Member, who: Participant | None):
        self.service = service
        self.room = room
        self.member = member
        self.who = who
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
        allowed = await self.service.shared_limits.allow(
            self.room.show_id, self.who.user_id, kind, bucket.rate, bucket.burst
        )
        if not allowed:  # (the two clocks differ by a little: refused once, not twice)
            bucket.tokens = min(bucket.burst, bucket.tokens + 1)
        return allowed

    def error(self, ref: str | None, code: str, message: str, fields: dict[str, str]) -> None:
        self.member.send(self.service.error_shape(code, message, ref, fields))

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
            async with self.service.busy:
                result = await getattr(self, "do_" + kind)(**fields)
            if spec.reply:
                self.reply(ref, **(result or {}))
        except ProtocolError as exc:
            self.error(ref or exc.ref, exc.code, exc.message, exc.fields)
        except CodedError as exc:  # checkout's refusals, illegal transitions
            self.error(ref, exc.code, exc.message, exc.fields)
        except Exception:
            log.exception("live request failed")
            self.error(ref, INTERNAL_ERROR, "something went wrong on our side", {})

    @property
    def uid(self) -> str:
        assert self.who is not None
        return self.who.user_id

    def _port(self) -> CheckoutPort:
        if self.service.checkout is None:
            raise ProtocolError("checkout_unavailable", "checkout is not available here")
        return self.service.checkout

    async def _log(self, action: str, **kwargs: Any) -> None:
        await self.room.moderation.log(self.uid, action, **kwargs)

    # -- everyone ----------------------------------------------------------------------------

    async def do_ping(self) -> dict[str, Any]:
        return {"clock_ms": await self.room.event_log.clock_ms()}

    async def do_chat(self, text: str) -> dict[str, Any]:
        assert self.who is not None
        text = clean_text(text)
        shadow = False
        if self.who.role is Role.VIEWER:
            shadow = (await self.room.moderation.check_chat(self.uid, text)).shadow
        message_id = await self.room.event_log.publish(
            "chat",
            {"user_id": self.uid, "name": self.who.name, "role": self.who.role.value, "text": text},
            to=self.uid if shadow else "",
        )
        return {"message_id": message_id}

    # -- viewers -----------------------------------------------------------------------------

    async def do_react(self, emoji: str) -> None:
        if not 0 < len(emoji) <= 8:
            raise ProtocolError("invalid_input", "one emoji", fields={"emoji": "1..8 characters"})
        self.room.hub.reactions[emoji] += 1

    async def do_tap(self, product_id: str) -> dict[str, Any]:
        count = await self.service.redis.hincrby(key(self.room.show_id, "taps"), product_id[:64], 1)
        return {"taps": count}

    async def do_ask(self, text: str) -> dict[str, Any]:
        assert self.who is not None
        text = clean_text(text)
        # A question is posted text too: mute, ban, slow mode and blocked words apply.
        verdict = await self.room.moderation.check_chat(self.uid, text)
        questions = self.room.questions
        question = await questions.ask(self.uid, self.who.name, text)
        if verdict.shadow:  # kept out of the queue; only its author sees it
            hidden = await questions.move(question["id"], QuestionStatus.DISMISSED)
            await self.room.event_log.publish("question", {"question": question}, to=self.uid)
            return {"question_id": hidden["id"]}
        await self.room.event_log.publish("question", {"question": question})
        return {"question_id": question["id"]}

    async def do_upvote(self, question_id: str) -> dict[str, Any]:
        question = await self.room.questions.upvote(question_id, self.uid)
        await self.room.event_log.publish(
            "question_updated", {"question": question}, Delivery.STATE, key_=f"q:{question_id}"
        )
        return {"votes": question["votes"]}

    async def do_vote(self, poll_id: str, option: int) -> None:
        await self.room.polls.vote(poll_id, option, self.uid)
        self.room.hub.poll_dirty = poll_id

    async def do_add_to_cart(self, variant_id: str, quantity: int) -> dict[str, Any]:
        cart = await self._port().add_to_cart(self.room.show_id, self.uid, variant_id, quantity)
        return {"cart": cart.to_json()}

    async def do_set_cart_quantity(self, variant_id: str, quantity: int) -> dict[str, Any]:
        port = self._port()
        cart = await port.set_cart_quantity(self.room.show_id, self.uid, variant_id, quantity)
        return {"cart": cart.to_json()}

    async def do_remove_from_cart(self, variant_id: str) -> dict[str, Any]:
        cart = await self._port().remove_from_cart(self.room.show_id, self.uid, variant_id)
        return {"cart": cart.to_json()}

    async def do_view_cart(self) -> dict[str, Any]:
        return {"cart": (await self._port().view_cart(self.room.show_id, self.uid)).to_json()}

    async def do_checkout_cart(self, idempotency_key: str, payment_method: str) -> dict[str, Any]:
        order = await self._port().checkout_cart(
            self.room.show_id, self.uid, idempotency_key, payment_method
        )
        return {"order": order.to_json()}

    async def do_buy_now(
        self, variant_id: str, quantity: int, idempotency_key: str, payment_method: str
    ) -> dict[str, Any]:
        order = await self._port().buy_now(
            self.room.show_id, self.uid, variant_id, quantity, idempotency_key, payment_method
        )
        return {"order": order.to_json()}

    async def do_notify_me(self, variant_id: str) -> None:
        await self._port().notify_me(self.room.show_id, self.uid, variant_id)

    # -- host ----------------------------------------------------------------------------------

    async def do_pin(self, product_id: str) -> dict[str, Any]:
        card = await self.room.cards.pin(product_id)
        await self.room.event_log.publish(
            "card_pinned", {"card": card}, Delivery.STATE, key_=f"card:{product_id}"
        )
        await self._log("pin", target_id=product_id)
        return {"card": card}

    async def do_unpin(self, product_id: str) -> None:
        await self.room.cards.unpin(product_id)
        await self.room.event_log.publish(
            "card_unpinned", {"product_id": product_id}, Delivery.STATE, key_=f"card:{product_id}"
        )
        await self._log("unpin", target_id=product_id)

    async def do_start_deal(
        self,
        variant_id: str,
        price_minor: int,
        units: int,
        duration_s: int,
        per_buyer_limit: int = 1,
    ) -> dict[str, Any]:
        if not 1 <= duration_s <= 24 * 3600:
            raise ProtocolError("invalid_input", "bad duration", fields={"duration_s": "1..86400"})
        ends_at = datetime.now(UTC) + timedelta(seconds=duration_s)
        deal = await self._port().start_deal(
            self.room.show_id,
            variant_id,
            price_minor=price_minor,
            units=units,
            ends_at=ends_at,
            per_buyer_limit=per_buyer_limit,
        )
        await self._log("start_deal", target_id=variant_id, detail={"price_minor": price_minor})
        return {"deal": deal.to_json()}

    async def do_stop_deal(self, variant_id: str) -> None:
        await self._port().stop_deal(self.room.show_id, variant_id)
        await self._log("stop_deal", target_id=variant_id)

    async def do_open_poll(self, question: str, options: list[str]) -> dict[str, Any]:
        poll = await self.room.polls.open(
            clean_text(question, 200), [clean_text(o, 80) for o in options]
        )
        await self.room.event_log.publish(
            "poll_opened", {"poll": poll}, Delivery.STATE, key_="poll"
        )
        await self._log("open_poll", target_id=poll["poll_id"])
        return {"poll_id": poll["poll_id"]}

    async def do_close_poll(self, poll_id: str) -> dict[str, Any]:
        poll = await self.room.polls.close(poll_id)
        await self.room.event_log.publish(
            "poll_closed", {"poll": poll}, Delivery.STATE, key_="poll"
        )
        await self._log("close_poll", target_id=poll_id)
        return {"tally": poll["tally"]}

    async def do_stats(self) -> dict[str, Any]:
        sales = {"orders": 0, "revenue_minor": 0, "units_sold": 0}
        if self.service.checkout is not None:
            sales.update(await self.service.checkout.stats(self.room.show_id))
        taps = await self.service.redis.hgetall(key(self.room.show_id, "taps"))
        return {
            "viewers_now": self.room.hub.viewers_now,
            "viewers_peak": self.room.hub.viewers_peak,
            **sales,
            "taps": {k: int(v) for k, v in taps.items()},
            "questions": await self.room.questions.answer_times(),
        }

    # -- moderators (and hosts for the queue and answers) -------------------------------------

    async def do_queue(self) -> dict[str, Any]:
        return {"questions": await self.room.questions.queue()}

    async def _question(self, question_id: str, action: str, question: dict[str, Any]) -> None:
        kind = "answer" if action == "answer" else "question_updated"
        await self.room.event_log.publish(
            kind, {"question": question}, Delivery.STATE, key_=f"q:{question_id}"
        )
        await self._log(action, target_id=question_id, target_viewer_id=question["viewer_id"])

    async def do_approve(self, question_id: str) -> None:
        q = await self.room.questions.move(question_id, QuestionStatus.APPROVED)
        await self._question(question_id, "approve", q)

    async def do_answer(self, question_id: str, text: str) -> dict[str, Any]:
        q = await self.room.questions.move(
            question_id, QuestionStatus.ANSWERED, answer=clean_text(text), by=self.uid
        )
        await self._question(question_id, "answer", q)
        return {"answer_s": q["answer_s"]}

    async def do_pin_question(self, question_id: str) -> None:
        q = await self.room.questions.pin(question_id)
        await self._question(question_id, "pin_question", q)

    async def do_dismiss(self, question_id: str) -> None:
        q = await self.room.questions.move(question_id, QuestionStatus.DISMISSED)
        await self._question(question_id, "dismiss", q)

    async def do_delete_chat(self, message_id: str) -> None:
        if not valid_id(message_id):
            raise ProtocolError(
                "invalid_input", "not a message id", fields={"message_id": "bad id"}
            )
        await self.service.redis.sadd(key(self.room.show_id, "deleted"), message_id)
        await self.room.event_log.publish("chat_deleted", {"message_id": message_id})
        await self._log("delete_chat", target_id=message_id)

    async def do_mute(self, user_id: str, seconds: int) -> None:
        await self.room.moderation.mute(user_id, seconds)
        await self._log("mute", target_viewer_id=user_id, detail={"seconds": seconds})
        await self._notify(user_id, "mute", seconds=seconds)

    async def do_ban(self, user_id: str) -> None:
        await self.room.moderation.ban(user_id)
        await self._log("ban", target_viewer_id=user_id)
        await self._notify(user_id, "ban")

    async def do_shadow_ban(self, user_id: str) -> None:
        await self.room.moderation.shadow_ban(user_id)
        await self._log("shadow_ban", target_viewer_id=user_id)

    async def do_slow_mode(self, user_id: str, seconds: int) -> None:
        await self.room.moderation.slow_mode(user_id, seconds)
        await self._log("slow_mode", target_viewer_id=user_id, detail={"seconds": seconds})
        await self._notify(user_id, "slow_mode", seconds=seconds)

    async def do_blocked_words(self, words: list[str]) -> dict[str, Any]:
        words = await self.room.moderation.set_blocked_words(words)
        await self._log("blocked_words", detail={"words": words})
        return {"words": words}

    async def do_canned_add(self, text: str) -> dict[str, Any]:
        canned_id = await self.room.moderation.canned_add(clean_text(text))
        await self._log("canned_add", target_id=canned_id)
        return {"canned_id": canned_id}

    async def do_canned_list(self) -> dict[str, Any]:
        return {"canned": await self.room.moderation.canned()}

    async def do_canned_send(self, canned_id: str) -> dict[str, Any]:
        text = (await self.room.moderation.canned()).get(canned_id)
        if text is None:
            raise ProtocolError(
                "not_found", "no such canned reply", fields={"canned_id": "unknown"}
            )
        await self._log("canned_send", target_id=canned_id)
        return await self.do_chat(text)

    async def do_viewer_orders(self, user_id: str) -> dict[str, Any]:
        orders = await self._port().orders_of(self.room.show_id, user_id)
        await self._log("viewer_orders", target_viewer_id=user_id)
        return {"orders": [o.to_json() for o in orders]}

    async def _notify(self, user_id: str, action: str, **detail: Any) -> None:
        """Tell the target (only) what happened; a ban also closes their sockets."""
        await self.room.event_log.publish(
            "moderation",
            {"action": action, **detail},
            Delivery.PERSONAL,
            key_="kick" if action == "ban" else "",
            to=user_id,
        )
