"""One hub per show per process: one stream reader, local sockets, presence, reactions.

The reader XREADs the show's stream (BLOCK) and hands each entry, serialized once, to
every local socket that may see it, in id order (a run of public feed entries goes out as
one batch). A joining socket catches up first (missed entries by id, or a snapshot) while
the reader holds its live entries; then the held entries newer than what it got are
flushed. Every entry is checked against the socket's ``last_sent`` by its own id, batched
or not: a reader that lags behind a socket's catch-up sends it only what is newer, so
there is no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.aio import cancel_requested, stop_tasks
from core.roles import Role
from live.event_log import Entry, EventLog, id_tuple, key, parse_id
from live.outbox import Frame, Outlet
from live.protocol import CLOSE_FORBIDDEN, Delivery, dumps

log = logging.getLogger("liveshop.live")

PRESENCE_FRESH_MS = 3000
# An entry's ``to`` names who may see it: "" everyone, a user id that user, or STAFF (the
# show's hosts and moderators), optionally with ":<user id>" for one more user (a pending
# question goes to the staff and to its asker).
STAFF = "@staff"
STAFF_ROLES = frozenset({Role.HOST, Role.MODERATOR})


def staff_and(user_id: str = "") -> str:
    """The ``to`` of an entry for the staff and (when given) one user."""
    return f"{STAFF}:{user_id}" if user_id else STAFF


def may_see(to: str, user_id: str, role: Role | None) -> bool:
    if not to or to == user_id:
        return True
    if not to.startswith(STAFF):
        return False
    rest = to[len(STAFF) :]
    return role in STAFF_ROLES or (bool(user_id) and rest == ":" + user_id)


BATCH_BYTES = 64 * 1024
_NO_SNAPSHOT_CHANGE = ('{"type":"chat",', '{"type":"reactions",', '{"type":"poll_tally",')

_PEAK = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
if now > cur then redis.call('SET', KEYS[1], now) return now end
return cur
"""


@dataclass(eq=False)
class Member:
    """One socket of one participant in this process."""

    user_id: str  # "" for an anonymous watcher
    role: Role | None  # None: anonymous
    outlet: Outlet
    last_sent: tuple[int, int] = (0, 0)
    held: list[Entry] | None = field(default_factory=list)  # not None while catching up

    def sees(self, entry: Entry) -> bool:
        return may_see(entry.to, self.user_id, self.role)

    def send_entry(self, entry: Entry, frame: Frame | None = None) -> None:
        position = id_tuple(entry.id)
        if position <= self.last_sent:
            return
        self.last_sent = position
        self.outlet.offer(frame or Frame(entry.text(), entry.delivery, entry.key))
        if entry.key == "kick":  # (a ban that came while this socket was catching up)
            self.outlet.shut(CLOSE_FORBIDDEN, "banned")

    def send(self, message: dict[str, Any], delivery: Delivery = Delivery.PERSONAL) -> None:
        self.outlet.offer(Frame(dumps(message), delivery, str(message.get("type", ""))))


class ShowHub:
    def __init__(
        self,
        redis: aioredis.Redis,
        show_id: str,
        snapshot: Callable[[Member], Awaitable[tuple[str, dict[str, Any]]]],
        *,
        process_id: str,
        tick_s: float = 0.05,
        block_ms: int = 1000,
    ) -> None:
        self.redis = redis
        self.show_id = show_id
        self.event_log = EventLog(redis, show_id)
        self.members: set[Member] = set()
        self.process_id = process_id
        self.tick_s = tick_s
        self.block_ms = block_ms
        self.reactions: Counter[str] = Counter()
        self.poll_dirty: str | None = None
        self.viewers_now = 0
        self.viewers_peak = 0
        self._viewers_stale = True
        self._gone: set[str] = set()  # users whose last socket here left since the last count
        self.version = 0  # bumped by every entry that changes a snapshot (not chat, reactions)
        self._snapshot = snapshot
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._started = asyncio.Event()
        self._read_from = "$"
        self._peak = redis.register_script(_PEAK)

    async def start(self) -> None:
        if self._tasks:
            await self._started.wait()
            return
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read_loop()), loop.create_task(self._tick_loop())]
        self._read_from = await self.event_log.last_id()
        self._started.set()

    async def close(self) -> None:
        # The reader is asked to stop rather than cancelled inside XREAD BLOCK (see
        # core.aio.cancel_requested); it stops within one block, then the rest is
        # cancelled, with a bounded wait.
        self._closing = True
        running = [t for t in self._tasks if not t.done()]
        if running:
            await asyncio.wait(running, timeout=self.block_ms / 1000 + 1)
        await stop_tasks(self._tasks)
        with contextlib.suppress(RedisError):
            await self.redis.hdel(key(self.show_id, "presence"), self.process_id)

    # -- joining ---------------------------------------------------------------------------

    async def join(self, member: Member, last_id: str | None) -> None:
        """Add ``member``: catch it up by id (or snapshot), then switch it to the live tail."""
        await self.start()
        member.held = []
        self.members.add(member)
        since = None if last_id is None else await self._resume_point(last_id)
        if since is not None:
            member.last_sent = id_tuple(since)
        else:
            since, snap = await self._snapshot(member)
            member.send(
                {"type": "snapshot", "last_id": since, "resync": last_id is not None, **snap}
            )
            member.last_sent = id_tuple(since)
        missed = [e for e in await self.event_log.after(since) if member.sees(e)]
        for chunk in _groups(missed, 8 * BATCH_BYTES):
            member.outlet.offer(_batch(chunk, Delivery.PERSONAL))
            member.last_sent = id_tuple(chunk[-1].id)
        # Banned since the socket was let in (and not unbanned since: the last says).
        verdicts = [e.key for e in missed if e.key in ("kick", "unkick")]
        if verdicts and verdicts[-1] == "kick":
            member.outlet.shut(CLOSE_FORBIDDEN, "banned")
        held, member.held = member.held, None
        for entry in held or ():
            member.send_entry(entry)

    async def _resume_point(self, last_id: str) -> str | None:
        """The id to resume after, or None for a snapshot: only an id the stream holds
        resumes (or ``0-0`` while it is empty). A malformed id, one trimmed away, or one it
        never held (another show's, another Redis's, the future's) gets a snapshot."""
        stream_id = parse_id(last_id)
        if stream_id is None:
            return None
        if await self.event_log.holds(stream_id):
            return stream_id
        if stream_id == "0-0" and await self.event_log.first_id() is None:
            return stream_id
        return None

    def leave(self, member: Member) -> None:
        self.members.discard(member)
        if member.user_id and not self.members_of(member.user_id):
            self._gone.add(member.user_id)  # (another process still holding them re-adds)

    # -- fan-out ---------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        await self._started.wait()
        while not (self._closing or cancel_requested()):
            try:
                entries = await self.event_log.read(self._read_from, self.block_ms)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream read failed", extra={"show": self.show_id})
                await asyncio.sleep(0.5)
                continue
            if not entries:
                continue
            self._read_from = entries[-1].id
            if any(not e.event.startswith(_NO_SNAPSHOT_CHANGE) for e in entries):
                self.version += 1
            self.fan_out(entries)
            if sum(e.delivery is Delivery.FEED for e in entries) > 1:
                await asyncio.sleep(self.tick_s)  # a storm: let the next read batch more

    def fan_out(self, entries: list[Entry]) -> None:
        """Write entries to local sockets in id order, each serialized once: every run of
        public feed entries in batches, any other entry alone, where it is in the stream."""
        run: list[Entry] = []
        for entry in entries:
            if entry.delivery is Delivery.FEED and not entry.to:
                run.append(entry)
                continue
            self._deliver_run(run)
            run = []
            self._deliver(entry, Frame(entry.text(), entry.delivery, entry.key))
        self._deliver_run(run)

    def _deliver_run(self, run: list[Entry]) -> None:
        for group in _groups(run, BATCH_BYTES):
            if len(group) == 1:
                self._deliver(group[0], Frame(group[0].text(), Delivery.FEED))
            else:
                self._deliver_batch(group)

    def _deliver(self, entry: Entry, frame: Frame) -> None:
        # The hot loop of fan-out: kept flat (one id parse per entry, not per socket).
        position = id_tuple(entry.id)
        to = entry.to
        kick = entry.key == "kick"
        for member in tuple(self.members):
            outlet = member.outlet
            if outlet.closed:
                self.members.discard(member)
                continue
            if to and to != member.user_id and not may_see(to, member.user_id, member.role):
                continue
            if member.held is not None:
                member.held.append(entry)
                continue
            if position <= member.last_sent:
                continue
            member.last_sent = position
            outlet.offer(frame)
            if kick:
                outlet.shut(CLOSE_FORBIDDEN, "banned")

    def _deliver_batch(self, group: list[Entry]) -> None:
        """Public feed entries as one shared batch; a socket whose catch-up already sent
        the batch's head gets its own batch of the rest."""
        frame = _batch(group, Delivery.FEED)
        first, last = id_tuple(group[0].id), id_tuple(group[-1].id)
        for member in tuple(self.members):
            outlet = member.outlet
            if outlet.closed:
                self.members.discard(member)
                continue
            if member.held is not None:
                member.held.extend(group)
                continue
            sent = member.last_sent
            if last <= sent:
                continue
            member.last_sent = last
            if sent < first:
                outlet.offer(frame)
            else:
                outlet.offer(_batch([e for e in group if id_tuple(e.id) > sent], Delivery.FEED))

    def local_broadcast(self, message: dict[str, Any], key_: str) -> None:
        """A state message that is not kept in the stream (viewer counts)."""
        frame = Frame(dumps(message), Delivery.STATE, key_)
        for member in tuple(self.members):
            if member.held is None and not member.outlet.closed:
                member.outlet.offer(frame)

    def members_of(self, user_id: str) -> list[Member]:
        return [m for m in self.members if m.user_id == user_id]

    # -- ticks: presence, reactions, poll tallies ------------------------------------------

    async def _tick_loop(self) -> None:
        await self._started.wait()
        next_presence = 0.0
        while not (self._closing or cancel_requested()):
            await asyncio.sleep(0.25)
            try:
                if self.reactions:
                    counts, self.reactions = dict(self.reactions), Counter()
                    totals = await self.add_reactions(counts)
                    await self.event_log.publish(
                        "reactions",
                        {"counts": counts, "totals": totals},
                        Delivery.STATE,
                        key_="reactions",
                    )
                if self.poll_dirty is not None:
                    poll_id, self.poll_dirty = self.poll_dirty, None
                    await self.publish_tally(poll_id)
                if time.monotonic() >= next_presence:
                    next_presence = time.monotonic() + 1.0
                    await self._presence()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("tick failed", extra={"show": self.show_id})

    async def add_reactions(self, counts: dict[str, int]) -> dict[str, int]:
        """Add one tick's reactions to the show's running totals (every process adds its
        own); the totals as they are after this tick's additions."""
        name = key(self.show_id, "reactions_total")
        async with self.redis.pipeline(transaction=False) as pipe:
            for emoji, n in counts.items():
                pipe.hincrby(name, emoji, n)
            added = await pipe.execute()
        return {emoji: int(total) for emoji, total in zip(counts, added, strict=True)}

    async def publish_tally(self, poll_id: str) -> None:
        tally = await self.redis.hgetall(key(self.show_id, f"poll:{poll_id}:tally"))
        counts = {k: int(v) for k, v in tally.items()}
        await self.event_log.publish(
            "poll_tally",
            {"poll_id": poll_id, "tally": counts},
            Delivery.STATE,
            key_=f"poll:{poll_id}",
        )

    async def _presence(self) -> None:
        """Viewers counted once each, however many sockets (tabs) and processes they use:
        a signed-in viewer is one member of a shared sorted set (scored by when a process
        last saw them: gone after PRESENCE_FRESH_MS), an anonymous watcher one socket (a
        count per process, each stamped and expired)."""
        name = key(self.show_id, "presence")
        users_key = key(self.show_id, "presence_users")
        watchers = [m for m in self.members if m.role in (Role.VIEWER, None)]
        users = {m.user_id for m in watchers if m.user_id}
        anonymous = sum(1 for m in watchers if not m.user_id)
        gone, self._gone = self._gone - users, set()
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(name, self.process_id, f"{anonymous}:{now_ms}")
            pipe.expire(name, 30)
            if gone:
                pipe.zrem(users_key, *gone)
            if users:
                pipe.zadd(users_key, dict.fromkeys(users, now_ms))
            pipe.zremrangebyscore(users_key, "-inf", now_ms - PRESENCE_FRESH_MS)
            pipe.expire(users_key, 30)
            pipe.zcard(users_key)
            pipe.hgetall(name)
            *_, signed_in, entries = await pipe.execute()
        total = int(signed_in)
        for proc, value in entries.items():
            count, _, stamp = value.partition(":")
            if now_ms - int(stamp) > PRESENCE_FRESH_MS:
                await self.redis.hdel(name, proc)
                continue
            total += int(count)
        peak = int(await self._peak(keys=[key(self.show_id, "peak")], args=[total]))
        if (total, peak) != (self.viewers_now, self.viewers_peak) or self._viewers_stale:
            # Only a change is sent: 10,000 sockets need no "still 10,000" each second.
            self.local_broadcast({"type": "viewers", "now": total, "peak": peak}, "viewers")
        self.viewers_now, self.viewers_peak = total, peak
        self._viewers_stale = False


def _batch(entries: list[Entry], delivery: Delivery) -> Frame:
    events = ",".join(e.text() for e in entries)
    return Frame('{"type":"batch","events":[' + events + "]}", delivery)


def _groups(entries: list[Entry], limit: int) -> list[list[Entry]]:
    """Consecutive groups of at most ``limit`` bytes of event text (at least one entry)."""
    groups: list[list[Entry]] = []
    size = limit + 1
    for entry in entries:
        if size + len(entry.event) > limit:
            groups.append([])
            size = 0
        groups[-1].append(entry)
        size += len(entry.event)
    return groups


def new_process_id() -> str:
    return f"{os.getpid()}-{secrets.token_hex(3)}"
