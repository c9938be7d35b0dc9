"""Webhooks on each database: sessions, endpoints made directly, deliverers with fast
schedules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import make_engine, make_sessionmaker
from webhooks import endpoints
from webhooks.delivery import Deliverer, DeliveryConfig
from webhooks.models import WebhookDelivery, WebhookEndpoint

FAST = DeliveryConfig(
    timeout_s=0.5, max_age_s=60, allow_private=True, schedule_s=(0, 0.2), jitter=0, poll_s=0.05
)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def add_endpoint(
    sessions: async_sessionmaker[AsyncSession],
    url: str,
    event_types: list[str] | None = None,
    *,
    enabled: bool = True,
) -> WebhookEndpoint:
    async with sessions.begin() as session:
        return await endpoints.create(
            session, url, event_types, "test", enabled=enabled, allow_private=True
        )


async def all_deliveries(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookDelivery]:
    async with sessions() as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        return list((await session.scalars(query)).all())


class Clock:
    """A clock the test moves by hand (the schedule's hours pass in no time)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def deliverer(
    sessions: async_sessionmaker[AsyncSession],
    config: DeliveryConfig = FAST,
    clock: Clock | None = None,
    **changes: object,
) -> Deliverer:
    config = replace(config, **changes)  # type: ignore[arg-type]
    return (
        Deliverer(sessions, config) if clock is None else Deliverer(sessions, config, clock=clock)
    )
