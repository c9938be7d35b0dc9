"""Keeping Redis in line with SQL over time: the sweeper, and rebuilding after a data loss.

The sweeper releases holds whose time is up and ends expired deals, every
``SWEEP_INTERVAL_S``. Each pass first checks the epoch (``inv:epoch``): when it vanished or
changed, Redis lost its data and every variant is loaded again from SQL stock, with the
one-tap idempotency keys of the last day's orders (``rebuild``). A show going live loads
its variants before its first tap (``prepare_show``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import orders, webhook_events
from checkout.errors import Unavailable
from checkout.events import DealEnded
from checkout.inventory import IDEM_TTL_MS, Inventory, idem_key
from checkout.lookups import Lookups
from checkout.models import Product, Variant
from checkout.stock_events import StockEvents
from core.aio import cancel_requested

log = logging.getLogger("liveshop.checkout")

SWEEP_INTERVAL_S = 0.25


class Recovery:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        inventory: Inventory,
        lookups: Lookups,
        stock_events: StockEvents,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.inventory = inventory
        self.lookups = lookups
        self.stock_events = stock_events
        self._seen_epoch: str | None = None

    async def rebuild(self) -> None:
        """Load every variant Redis lacks from SQL stock (after a data loss: all of them).

        When the epoch changed (Redis lost its data), the one-tap idempotency keys of the
        last day's orders are written back too, so a retry still finds its order.
        """
        before = self._seen_epoch
        self._seen_epoch = await self.inventory.current_epoch()
        async with self.sessions() as session:
            ids = list((await session.scalars(select(Variant.id))).all())
        loaded = 0
        for variant_id in ids:
            loaded += await self.inventory.load(variant_id)
        if loaded or before != self._seen_epoch:
            await self._restore_idempotency()
            log.info("inventory rebuilt from SQL", extra={"variants": loaded})

    async def _restore_idempotency(self) -> None:
        since = datetime.now(UTC) - timedelta(seconds=IDEM_TTL_MS // 1000)
        async with self.sessions() as session:
            recent = await orders.recent_orders(session, since)
        for order in recent:
            if len(order.lines) != 1:
                continue  # cart orders are found in SQL before anything is held
            line = order.lines[0]
            fp = f"{order.show_id}|{line.variant_id}|{line.quantity}"
            ikey = idem_key(line.variant_id, order.buyer_id, order.idempotency_key)
            if await self.redis.hsetnx(ikey, "fp", fp):
                await self.redis.hset(ikey, mapping={"state": "done", "order": order.id})
                await self.redis.pexpire(ikey, IDEM_TTL_MS)

    async def prepare_show(self, show_id: str) -> None:
        """Load a show's variants into Redis as it goes live, before its first tap.

        Best effort: the show is live whatever happens here, and a variant this misses is
        loaded by its first tap."""
        try:
            async with self.sessions() as session:
                ids = (
                    await session.scalars(
                        select(Variant.id)
                        .join(Product, Product.id == Variant.product_id)
                        .where(Product.show_id == show_id)
                    )
                ).all()
            for variant_id in ids:
                await self.inventory.load(variant_id)
        except Exception as exc:
            log.warning("could not load the show's stock into redis: %r", exc)

    async def run(self) -> None:
        """Sweep every ``SWEEP_INTERVAL_S`` until cancelled; a failed pass waits for the next."""
        while not cancel_requested():
            await asyncio.sleep(SWEEP_INTERVAL_S)
            try:
                await self.sweep_once()
            except (Unavailable, RedisError) as exc:
                log.warning("sweep skipped: %s", exc)
            except Exception:
                log.exception("sweep failed")

    async def sweep_once(self) -> None:
        """Release holds whose time is up, end expired deals; rebuild if Redis lost its data."""
        epoch = await self.redis.get("inv:epoch")
        if epoch is None or epoch != self._seen_epoch:
            log.warning("redis lost its data (epoch changed): rebuilding from SQL")
            await self.rebuild()
        for variant_id in await self.inventory.known_variants():
            swept = await self.inventory.sweep(variant_id)
            if swept is None:
                continue
            await self.stock_events.on_released(swept.released)
            show_id = swept.deal_expired_show
            if show_id:
                await self.redis.srem(f"deals:{show_id}", variant_id)
                await self.stock_events.publish(DealEnded(show_id, variant_id, "expired"))
                await webhook_events.deal_ended(self.sessions, show_id, variant_id, "expired")
            if swept.released:
                info = await self.lookups.info(variant_id)
                self.stock_events.moved(info.show_id, variant_id, swept.available)
                if swept.back_in_stock:
                    await self.stock_events.back_in_stock(info.show_id, variant_id, swept.available)
