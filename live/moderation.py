"""Moderation state in Redis (mutes, bans, shadow bans, slow mode, blocked words, canned
replies) and the moderation log in SQL (one ModerationAction row per action)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from live.event_log import key
from live.models import ModerationAction
from live.protocol import ProtocolError


@dataclass(frozen=True)
class ChatVerdict:
    shadow: bool  # the author sees the message, nobody else does


MAX_SECONDS = 24 * 3600
MAX_LISTED = 200  # viewers per list in moderation_state


def _check_seconds(seconds: int) -> None:
    if not 0 <= seconds <= MAX_SECONDS:
        raise ProtocolError(
            "invalid_input", "seconds out of range", fields={"seconds": f"0..{MAX_SECONDS}"}
        )


class Moderation:
    def __init__(
        self, redis: aioredis.Redis, sessions: async_sessionmaker[AsyncSession], show_id: str
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.show_id = show_id

    def _k(self, name: str) -> str:
        return key(self.show_id, name)

    async def log(self, moderator_id: str, action: str, **row: Any) -> None:
        async with self.logged(moderator_id, action, **row):
            pass

    @asynccontextmanager
    async def logged(
        self,
        moderator_id: str,
        action: str,
        *,
        target_viewer_id: str | None = None,
        target_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AsyncIterator[None]:
        """The action's row is written (flushed) before the body runs and committed after
        it: a row the database refuses stops the action before it starts, and an action
        that fails leaves no row. Only for actions on Redis (an SQL write of another
        session inside would wait on this transaction's lock under SQLite)."""
        async with self.sessions.begin() as session:
            session.add(
                ModerationAction(
                    show_id=self.show_id,
                    moderator_id=moderator_id,
                    action=action,
                    target_viewer_id=target_viewer_id,
                    target_id=target_id,
                    detail=detail or {},
                )
            )
            await session.flush()
            yield

    async def is_banned(self, user_id: str) -> bool:
        return bool(await self.redis.sismember(self._k("bans"), user_id))

    async def remember_name(self, user_id: str, name: str) -> None:
        """A viewer's display name, for the moderators' lists (written as they join)."""
        await self.redis.hset(self._k("names"), user_id, name)

    async def mute(self, user_id: str, seconds: int) -> None:
        _check_seconds(seconds)
        seconds = max(1, seconds)
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._k(f"mute:{user_id}"), 1, ex=seconds)
            # (the list of mutes, each with its end; ended ones are dropped here)
            pipe.zremrangebyscore(self._k("muted"), "-inf", now_ms)
            pipe.zadd(self._k("muted"), {user_id: now_ms + seconds * 1000})
            await pipe.execute()

    async def unmute(self, user_id: str) -> bool:
        """Whether they were muted."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._k(f"mute:{user_id}"))
            pipe.zrem(self._k("muted"), user_id)
            gone, _ = await pipe.execute()
        return bool(gone)

    async def ban(self, user_id: str) -> None:
        await self.redis.sadd(self._k("bans"), user_id)

    async def unban(self, user_id: str) -> bool:
        return bool(await self.redis.srem(self._k("bans"), user_id))

    async def shadow_ban(self, user_id: str) -> None:
        await self.redis.sadd(self._k("shadow"), user_id)

    async def unshadow_ban(self, user_id: str) -> bool:
        return bool(await self.redis.srem(self._k("shadow"), user_id))

    async def state(self) -> dict[str, Any]:
        """Who is muted (until when), banned, shadow-banned or slowed, and the blocked
        words: at most MAX_LISTED viewers per list, by name."""
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self._k("muted"), f"({now_ms}", "+inf", withscores=True)
            pipe.smembers(self._k("bans"))
            pipe.smembers(self._k("shadow"))
            pipe.hgetall(self._k("slow"))
            pipe.smembers(self._k("blocked"))
            muted, banned, shadow, slow, blocked = await pipe.execute()
        muted = [(str(u), int(score)) for u, score in muted]
        ids = {u for u, _ in muted} | {str(u) for u in (*banned, *shadow, *slow)}
        names: dict[str, str] = {}
        if ids:
            ordered = sorted(ids)
            found = await self.redis.hmget(self._k("names"), ordered)
            names = {u: str(n) for u, n in zip(ordered, found, strict=True) if n is not None}

        def listed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            for row in rows:
                row["name"] = names.get(row["user_id"], "")
            rows.sort(key=lambda row: (row["name"].lower(), row["user_id"]))
            return rows[:MAX_LISTED]

        return {
            "muted": listed(
                [{"user_id": u, "until": _iso(until), "until_ms": until} for u, until in muted]
            ),
            "banned": listed([{"user_id": str(u)} for u in banned]),
            "shadow_banned": listed([{"user_id": str(u)} for u in shadow]),
            "slow_mode": listed([{"user_id": str(u), "seconds": int(s)} for u, s in slow.items()]),
            "blocked_words": sorted(str(w) for w in blocked),
        }

    async def slow_mode(self, user_id: str, seconds: int) -> None:
        _check_seconds(seconds)
        if seconds <= 0:
            await self.redis.hdel(self._k("slow"), user_id)
        else:
            await self.redis.hset(self._k("slow"), user_id, seconds)

    @staticmethod
    def clean_words(words: list[str]) -> list[str]:
        return sorted({w.strip().lower() for w in words if w.strip()})

    async def set_blocked_words(self, words: list[str]) -> list[str]:
        cleaned = self.clean_words(words)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._k("blocked"))
            if cleaned:
                pipe.sadd(self._k("blocked"), *cleaned)
            await pipe.execute()
        return cleaned

    async def check_chat(self, user_id: str, text: str) -> ChatVerdict:
        """Refuse muted, banned, too-fast (slow mode) or blocked-word chat; before fan-out."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.ttl(self._k(f"mute:{user_id}"))
            pipe.sismember(self._k("bans"), user_id)
            pipe.sismember(self._k("shadow"), user_id)
            pipe.hget(self._k("slow"), user_id)
            pipe.smembers(self._k("blocked"))
            muted, banned, shadow, slow, blocked = await pipe.execute()
        if banned:
            raise ProtocolError("banned", "you are banned from this show")
        if muted is not None and int(muted) != -2:  # (-2: no mute; -1: no expiry)
            left = max(1, int(muted))
            raise ProtocolError(
                "muted", f"you are muted for {left} more s", extra={"seconds_left": left}
            )
        lowered = text.lower()
        hits = sorted(w for w in blocked if re.search(rf"\b{re.escape(w)}\b", lowered))
        if hits:
            raise ProtocolError(
                "blocked_words", "the message has blocked words", fields={"text": "blocked"}
            )
        if slow:
            fresh = await self.redis.set(self._k(f"slowlast:{user_id}"), 1, nx=True, ex=int(slow))
            if not fresh:
                raise ProtocolError(
                    "slow_mode",
                    f"one message every {int(slow)} s for you",
                    extra={"seconds": int(slow)},
                )
        return ChatVerdict(shadow=bool(shadow))

    async def canned_add(self, text: str) -> str:
        canned_id = "cnd_" + secrets.token_urlsafe(6)
        await self.redis.hset(self._k("canned"), canned_id, text)
        return canned_id

    async def canned(self) -> dict[str, str]:
        result: dict[str, str] = await self.redis.hgetall(self._k("canned"))  # type: ignore[assignment]
        return result


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
