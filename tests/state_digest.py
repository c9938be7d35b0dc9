"""What a refused request must leave as it was: every SQL row and every Redis value.

``digest`` reads both whole (the fuzz tests' databases are small); ``VOLATILE`` names the
Redis keys that change with no request at all, or by design on a refused one, each with
its reason, and ``VOLATILE_TABLES`` the same for SQL.
"""

from __future__ import annotations

import re
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import Base

VOLATILE = re.compile(
    r"liveshop:test-claim:.*"  # (the test session's claim on its Redis database)
    r"|live:\{[^}]*\}:(presence|presence_users|peak)"  # viewer counts, every second
    r"|live:\{[^}]*\}:rl:.*"  # rate-limit buckets: a request counts before it is judged
    # each process says it is alive (and where its edge feed listens) every 5 s
    r"|liveshop:video:processes|liveshop:video:feed:.*"
)

VOLATILE_TABLES = frozenset({"worker_beats"})  # each worker's heartbeat, every second


async def digest(engine: AsyncEngine, redis: aioredis.Redis) -> dict[str, Any]:
    state: dict[str, Any] = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in VOLATILE_TABLES:
                continue
            rows = (await conn.execute(select(table))).all()
            state[f"sql:{table.name}"] = sorted(repr(tuple(row)) for row in rows)
    keys = sorted(str(k) for k in await redis.keys("*") if not VOLATILE.fullmatch(str(k)))
    expiring: set[str] = set()
    for name in keys:
        ttl = await redis.pttl(name)
        value = await _value(redis, name)
        if ttl == -2 or value == "none":
            continue  # gone between KEYS and now: it ran out by itself
        state[f"redis:{name}"] = value
        if ttl > 0:
            expiring.add(f"redis:{name}")
    state[EXPIRING] = expiring
    return state


async def _value(redis: aioredis.Redis, name: str) -> Any:
    kind = str(await redis.type(name))
    if kind == "string":
        return await redis.get(name)
    if kind == "hash":
        return await redis.hgetall(name)
    if kind == "set":
        return sorted(await redis.smembers(name))
    if kind == "zset":
        return await redis.zrange(name, 0, -1, withscores=True)
    if kind == "list":
        return await redis.lrange(name, 0, -1)
    if kind == "stream":
        return await redis.xrange(name, "-", "+")
    return kind  # (gone between KEYS and TYPE: "none")


EXPIRING = "(keys with a time to live)"


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What differs, less a key with a time to live that ran out in between (a mute of a
    few seconds set by an earlier request): it went by itself, not by the request."""
    gone_by_itself = before.get(EXPIRING, set()) - after.keys()
    keys = (before.keys() | after.keys()) - {EXPIRING} - gone_by_itself
    return sorted(k for k in keys if before.get(k) != after.get(k))
