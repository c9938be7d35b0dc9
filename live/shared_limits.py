"""Rate limits that hold across processes, for what every viewer sees.

A viewer's chat messages, questions and upvotes are limited per show in Redis as well as
in the process (``live.limits.RateLimits``): with several worker processes, a client
that spread its sockets over them, or reconnected to another one, would otherwise get a
fresh burst in each. Reactions and taps stay limited per process only: they are the
busiest messages, and their abuse reaches nobody's screen as text.

The bucket is GCRA (the generic cell rate algorithm): one key per viewer, show and kind
holding the theoretical arrival time in milliseconds of Redis's own clock, expiring when
the bucket is full again.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from live.event_log import key

log = logging.getLogger("liveshop.live")

SHARED_KINDS = frozenset({"chat", "ask", "upvote"})

# KEYS[1]: the bucket; ARGV: ms between messages at the steady rate, burst. 1: allowed.
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > burst * interval then return 0 end
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now)
return 1
"""


class SharedLimits:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._script = redis.register_script(_GCRA)

    async def allow(self, show_id: str, user_id: str, kind: str, rate: float, burst: int) -> bool:
        """True when the viewer may send one more ``kind`` message to this show now.
        Without Redis it says yes: the process's own limit still holds, and the message
        cannot be delivered anyway."""
        if rate <= 0:  # a burst that never refills: the process's bucket is the limit
            return True
        interval_ms = max(1, round(1000 / rate))
        try:
            allowed = await self._script(
                keys=[key(show_id, f"rl:{kind}:{user_id}")], args=[interval_ms, burst]
            )
        except RedisError as exc:
            log.warning("shared rate limit unavailable: %r", exc)
            return True
        return bool(allowed)
