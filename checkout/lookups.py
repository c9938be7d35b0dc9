"""What checkout looks up before it touches stock: a variant's price, show and publication,
and a show's status, each cached per process and read from SQL once per key at a time.

Also the two clocks checkout reads elsewhere: SQL stock (the inventory's loader) and the
Redis server clock (``server_ms``), the one every hold's expiry is measured against.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import orders
from checkout.errors import Conflict, NotFound
from checkout.models import Product, Show, Variant
from checkout.show_state import ShowStatus
from core.aio import SingleFlight

SHOW_CACHE_S = 1.0


@dataclass(frozen=True)
class VariantInfo:
    variant_id: str
    show_id: str
    price_minor: int
    currency: str
    published: bool


async def server_ms(redis: aioredis.Redis) -> int:
    """Now on the Redis server clock, in ms."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


class Lookups:
    """The variant-info cache (kept for the process) and the show-status cache (1 s)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._variants: dict[str, VariantInfo] = {}
        self._shows: dict[str, tuple[ShowStatus, float]] = {}
        self._reads = SingleFlight()  # variant and show reads, one per key at a time

    def invalidate_show(self, show_id: str) -> None:
        """Forget the cached status of a show (called when it starts or ends)."""
        self._shows.pop(show_id, None)
        self._reads.forget(f"show:{show_id}")  # a read under way may predate the change

    async def sql_stock(self, variant_id: str) -> int:
        async with self.sessions() as session:
            return await orders.sql_stock(session, variant_id)

    def cached(self, variant_id: str) -> VariantInfo:
        """A variant ``info`` already answered for."""
        return self._variants[variant_id]

    async def info(self, variant_id: str) -> VariantInfo:
        info = self._variants.get(variant_id)
        if info is not None:
            return info
        if not isinstance(variant_id, str) or not variant_id:
            raise NotFound("variant_not_found", "no such variant", fields={"variant_id": "unknown"})
        info = await self._reads.run(f"variant:{variant_id}", lambda: self._read_info(variant_id))
        if info is None:
            raise NotFound(
                "variant_not_found",
                f"no variant {variant_id!r}",
                fields={"variant_id": "unknown"},
            )
        return info

    async def _read_info(self, variant_id: str) -> VariantInfo | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(
                        Variant.price_minor, Variant.currency, Product.show_id, Product.published
                    )
                    .join(Product, Product.id == Variant.product_id)
                    .where(Variant.id == variant_id)
                )
            ).one_or_none()
        if row is None:
            return None
        info = VariantInfo(variant_id, row.show_id, row.price_minor, row.currency, row.published)
        self._variants[variant_id] = info
        return info

    async def show_status(self, show_id: str) -> ShowStatus:
        cached = self._shows.get(show_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        status = await self._reads.run(f"show:{show_id}", lambda: self._read_show_status(show_id))
        if status is None:
            raise NotFound("show_not_found", f"no show {show_id!r}", fields={"show_id": "unknown"})
        return status

    async def _read_show_status(self, show_id: str) -> ShowStatus | None:
        me = asyncio.current_task()
        async with self.sessions() as session:
            status = await session.scalar(select(Show.status).where(Show.id == show_id))
        if status is not None and self._reads.current(f"show:{show_id}") is me:
            # (not cached when the show changed while this read was under way)
            self._shows[show_id] = (status, time.monotonic() + SHOW_CACHE_S)
        return status

    async def require_live(self, show_id: str) -> None:
        status = await self.show_status(show_id)
        if status is ShowStatus.ENDED:
            raise Conflict("show_ended", "the show has ended", fields={"show_id": "ended"})
        if status is not ShowStatus.LIVE:
            raise Conflict("show_not_live", "the show is not live", fields={"show_id": "not live"})

    async def variant(self, show_id: str, variant_id: str, *, live: bool = True) -> VariantInfo:
        """The variant if it is sold in this show and published (and the show is live)."""
        if live:
            await self.require_live(show_id)
        else:
            await self.show_status(show_id)
        info = await self.info(variant_id)
        if info.show_id != show_id:
            raise NotFound(
                "variant_not_found",
                "this variant is not sold in this show",
                fields={"variant_id": "not in this show"},
            )
        if not info.published:
            raise NotFound(
                "product_unpublished",
                "this product is not published",
                fields={"variant_id": "not published"},
            )
        return info
