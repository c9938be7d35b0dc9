"""Long-lived resources, owned by the app's lifespan: engine, Redis client, embedded server."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from config import Settings
from core.db import make_engine, make_sessionmaker
from web.embedded_redis import EmbeddedRedis


@dataclass
class Resources:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    redis_url: str
    embedded: EmbeddedRedis | None

    @classmethod
    async def open(cls, settings: Settings) -> Resources:
        embedded: EmbeddedRedis | None = None
        redis_url = settings.redis_url
        if redis_url is None:
            embedded = EmbeddedRedis(settings.data_dir)
            redis_url = await embedded.astart()
        engine = make_engine(settings.effective_database_url)
        # A blocking pool: under a burst, a request waits for a free connection instead
        # of failing with MaxConnectionsError (seen in `liveshop bench drop`).
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            max_connections=settings.redis_max_connections,
            timeout=10,
            decode_responses=True,
            health_check_interval=10,
        )
        client = aioredis.Redis.from_pool(pool)
        return cls(engine, make_sessionmaker(engine), client, redis_url, embedded)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()
        if self.embedded is not None:
            await self.embedded.astop()
