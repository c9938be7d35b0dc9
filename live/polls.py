"""Polls: one open poll per show, one vote per viewer (their choice kept: a second vote is
refused with it, and the snapshot tells each viewer theirs), tallies in a Redis hash."""

from __future__ import annotations

import json
import secrets
from typing import Any

import redis.asyncio as aioredis

from live.event_log import key
from live.protocol import ProtocolError

MAX_OPTIONS = 6


class Polls:
    def __init__(self, redis: aioredis.Redis, show_id: str) -> None:
        self.redis = redis
        self.show_id = show_id
        self.current = key(show_id, "poll")

    async def open(self, question: str, options: list[str]) -> dict[str, Any]:
        if not 2 <= len(options) <= MAX_OPTIONS:
            raise ProtocolError(
                "invalid_input",
                "a poll has 2 to 6 options",
                fields={"options": f"2..{MAX_OPTIONS}"},
            )
        poll = {
            "poll_id": "pol_" + secrets.token_urlsafe(6),
            "question": question,
            "options": options,
        }
        if not await self.redis.set(self.current, json.dumps(poll), nx=True):
            raise ProtocolError("poll_open", "close the open poll first")
        return poll

    async def get(self) -> dict[str, Any] | None:
        raw = await self.redis.get(self.current)
        if raw is None:
            return None
        poll: dict[str, Any] = json.loads(raw)
        poll["tally"] = await self.tally(poll["poll_id"])
        return poll

    async def tally(self, poll_id: str) -> dict[str, int]:
        raw: dict[str, str] = await self.redis.hgetall(  # type: ignore[assignment]
            key(self.show_id, f"poll:{poll_id}:tally")
        )
        return {k: int(v) for k, v in raw.items()}

    async def vote(self, poll_id: str, option: int, viewer_id: str) -> None:
        poll = await self.get()
        if poll is None or poll["poll_id"] != poll_id:
            raise ProtocolError(
                "poll_closed", "that poll is not open", fields={"poll_id": "not open"}
            )
        if not 0 <= option < len(poll["options"]):
            raise ProtocolError(
                "invalid_input", "no such option", fields={"option": "out of range"}
            )
        choices = key(self.show_id, f"poll:{poll_id}:choices")
        if not await self.redis.hsetnx(choices, viewer_id, str(option)):
            chosen = await self.choice(poll_id, viewer_id)
            raise ProtocolError(
                "already_voted",
                "you already voted in this poll",
                extra={"option": chosen, "choice": poll["options"][chosen or 0]},
            )
        await self.redis.hincrby(key(self.show_id, f"poll:{poll_id}:tally"), str(option), 1)

    async def choice(self, poll_id: str, viewer_id: str) -> int | None:
        """The option ``viewer_id`` voted for in the poll, or None."""
        raw = await self.redis.hget(key(self.show_id, f"poll:{poll_id}:choices"), viewer_id)
        return None if raw is None else int(raw)

    async def close(self, poll_id: str) -> dict[str, Any]:
        poll = await self.get()
        if poll is None or poll["poll_id"] != poll_id:
            raise ProtocolError(
                "poll_closed", "that poll is not open", fields={"poll_id": "not open"}
            )
        await self.redis.delete(self.current)
        return poll
