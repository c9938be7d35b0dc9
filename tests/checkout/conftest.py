"""A running CheckoutService on real Redis and each database, with a live show to sell in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import catalog
from checkout.catalog import ProductSpec, VariantSpec
from checkout.events import Event
from checkout.inventory import stock_key
from checkout.models import Order, OrderLine, Variant
from checkout.payments import TestPaymentProvider
from checkout.service import CheckoutService
from checkout.show_state import ShowStatus
from core.db import make_engine, make_sessionmaker
from core.group_commit import GroupCommit

T = TypeVar("T")

CART_HOLD_S = 2
PAYMENT_HOLD_S = 3
PROVIDER_TIMEOUT_S = 0.3


async def wait_until(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float
) -> T:
    """Poll ``probe`` until ``done`` holds, for at most ``timeout_s`` seconds."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = await probe()
            if done(value):
                return value
            await asyncio.sleep(0.1)


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


@dataclass
class Shop:
    service: CheckoutService
    sessions: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    sink: RecordingSink
    payments: TestPaymentProvider
    show_id: str
    variants: dict[str, str] = field(default_factory=dict)  # sku -> id
    other_show_id: str = ""
    listed: dict[str, int] = field(default_factory=dict)  # variant -> units at the start

    def v(self, sku: str) -> str:
        return self.variants[sku]

    async def sql_stock(self, variant_id: str) -> int:
        async with self.sessions() as session:
            stock = await session.scalar(select(Variant.stock).where(Variant.id == variant_id))
            assert stock is not None
            return stock

    async def counts(self, variant_id: str) -> dict[str, int]:
        await self.service.settled()  # answered orders tell Redis right after the answer
        raw = await self.redis.hgetall(stock_key(variant_id))
        return {k: int(raw[k]) for k in ("avail", "held", "sold", "listed")}

    async def order_count(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count(Order.id))) or 0)

    async def units_ordered(self, variant_id: str) -> int:
        async with self.sessions() as session:
            total = await session.scalar(
                select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(
                    OrderLine.variant_id == variant_id
                )
            )
            return int(total or 0)

    async def snapshot(self) -> tuple[object, ...]:
        """Everything a refused request must leave alone."""
        out: list[object] = [await self.order_count()]
        for variant_id in sorted(self.variants.values()):
            out.append(await self.sql_stock(variant_id))
            out.append(await self.counts(variant_id))
        return tuple(out)

    async def assert_invariant(self, variant_id: str) -> None:
        c = await self.counts(variant_id)
        assert c["avail"] >= 0 and c["held"] >= 0
        assert c["avail"] + c["held"] + c["sold"] == c["listed"], c
        sold_sql = await self.units_ordered(variant_id)
        assert await self.sql_stock(variant_id) + sold_sql == self.listed[variant_id]


CATALOG = [
    ProductSpec(
        name="Sneaker",
        variants=[
            VariantSpec("SNK-42", 12900, "EUR", 5),
            VariantSpec("SNK-43", 12900, "EUR", 100),
            VariantSpec("SNK-44", 12900, "EUR", 0),
        ],
    ),
    ProductSpec(name="Mug", variants=[VariantSpec("MUG", 1500, "EUR", 20)]),
]


async def seed(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, str, dict[str, str]]:
    async with sessions.begin() as session:
        show = await catalog.create_show(session, "Drop")
        other = await catalog.create_show(session, "Other")
        variants: dict[str, str] = {}
        for spec in CATALOG:
            product = await catalog.add_product(session, show.id, spec)
            variants.update({v.sku: v.id for v in product.variants})
        hidden = await catalog.add_product(
            session,
            show.id,
            ProductSpec(name="Secret", variants=[VariantSpec("HIDDEN", 100, "EUR", 3)]),
        )
        hidden.published = False
        variants["HIDDEN"] = hidden.variants[0].id
        elsewhere = await catalog.add_product(
            session, other.id, ProductSpec(name="Far", variants=[VariantSpec("FAR", 100, "EUR", 3)])
        )
        variants["FAR"] = elsewhere.variants[0].id
        await catalog.change_status(session, show.id, ShowStatus.LIVE)
        return show.id, other.id, variants


@pytest.fixture
def provider_class() -> type[TestPaymentProvider]:
    """The shop's provider (a test module may give one that fails on purpose)."""
    return TestPaymentProvider


@pytest.fixture
async def shop(
    db_url: str, redis_client: aioredis.Redis, provider_class: type[TestPaymentProvider]
) -> AsyncIterator[Shop]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    show_id, other_id, variants = await seed(sessions)
    sink = RecordingSink()
    group = GroupCommit.beside(sessions)
    payments = provider_class(sessions, timeout_s=PROVIDER_TIMEOUT_S, group=group)
    service = CheckoutService(
        sessions,
        redis_client,
        sink,
        payments,
        cart_hold_s=CART_HOLD_S,
        payment_hold_s=PAYMENT_HOLD_S,
        group=group,
    )
    await service.start()
    shop = Shop(service, sessions, redis_client, sink, payments, show_id, variants, other_id)
    for variant_id in variants.values():
        shop.listed[variant_id] = await shop.sql_stock(variant_id)
    try:
        yield shop
    finally:
        await service.close()
        await engine.dispose()
