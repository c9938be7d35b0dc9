"""Sending the outbox: every worker process runs a ``Deliverer`` that claims the due
deliveries, POSTs each, and records the outcome; failures come back on a backoff schedule
until the message is ``max_age_s`` old, then the delivery is ``failed``.

Claims: one conditional UPDATE moves the due rows' ``next_attempt_at`` past a lease and
writes the claim's token (``claimed_by``), so two workers never send the same delivery at
the same moment (on PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``, so workers
take different rows instead of waiting on each other; SQLite runs one writer at a time).
An outcome is recorded only while the claim is still the worker's own. At least once: a
worker that dies between sending and recording leaves the claim to run out, and the
delivery is sent again (receivers dedupe by ``webhook-id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.aio import cancel_requested, stop_tasks
from core.db import new_id, utcnow
from webhooks import signing
from webhooks.errors import WebhookError
from webhooks.models import (
    ERROR_MAX_CHARS,
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from webhooks.urls import PrivateAddress, require_public

log = logging.getLogger("liveshop.webhooks")

STANDARD_SCHEDULE_S: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000)
"""Delays before each attempt (the first at once): Standard Webhooks' schedule to 10 hours;
after that every 10 hours until the message is ``max_age_s`` old."""


@dataclass(frozen=True)
class DeliveryConfig:
    timeout_s: float = 15.0
    """A whole attempt (connect, send, the answer's status line), at most."""
    max_age_s: float = 3 * 24 * 3600.0
    """A delivery still failing when its next attempt would come later than this after
    the event is ``failed``."""
    allow_private: bool = False
    schedule_s: tuple[float, ...] = STANDARD_SCHEDULE_S
    jitter: float = 0.1
    """Each delay is stretched or shrunk by up to this fraction, at random."""
    batch: int = 50
    """Deliveries claimed in one pass (bounded work)."""
    concurrency: int = 10
    """Attempts in flight at once in one worker."""
    poll_s: float = 1.0
    """How often a worker looks for due deliveries when the last pass found few."""

    @property
    def lease_s(self) -> float:
        """How long a claim lasts: past it another worker may send the delivery again."""
        return self.timeout_s + 30.0


@dataclass(frozen=True)
class Claimed:
    delivery_id: str
    token: str
    attempts: int
    message_id: str
    type: str
    payload: dict[str, Any]
    created_at: datetime
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Deliverer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        config: DeliveryConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.clock = clock
        self.attempts = 0  # attempts this worker made (for tests and metrics)
        self._client = httpx.AsyncClient(
            timeout=config.timeout_s,
            follow_redirects=False,  # a 3xx is a failure: the endpoint's URL should change
            trust_env=False,  # no proxy from the environment (nor its credentials)
            headers={"user-agent": "liveshop-webhooks"},
        )
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="webhooks-deliverer")

    async def close(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task], timeout_s=self.config.timeout_s + 1)
            self._task = None
        await self._client.aclose()

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while not cancel_requested():
            try:
                claimed = await self.deliver_due()
            except Exception:
                log.exception("webhook delivery pass failed")
                claimed = 0
            if claimed < self.config.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_s)
                self._wake.clear()

    async def deliver_due(self) -> int:
        """One pass: claim at most ``batch`` due deliveries and attempt each; how many."""
        claimed = await self.claim_due()
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(c: Claimed) -> None:
            async with gate:
                await self.attempt(c)

        await asyncio.gather(*(one(c) for c in claimed))
        return len(claimed)

    async def claim_due(self) -> list[Claimed]:
        now = self.clock()
        token = new_id("clm")
        enabled = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
        pending = (
            WebhookDelivery.state == DeliveryState.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            WebhookDelivery.endpoint_id.in_(enabled),
        )
        async with self.sessions() as session:
            # a read first: an idle worker takes no write lock (SQLite has one for all)
            probe = select(WebhookDelivery.id).where(*pending).limit(1)
            if await session.scalar(probe) is None:
                return []
        due = (
            select(WebhookDelivery.id)
            .where(*pending)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(self.config.batch)
            .with_for_update(skip_locked=True)  # (PostgreSQL; SQLite renders nothing)
        )
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id.in_(due.scalar_subquery()),
                    WebhookDelivery.state == DeliveryState.PENDING,
                    WebhookDelivery.next_attempt_at <= now,
                )
                .values(
                    next_attempt_at=now + timedelta(seconds=self.config.lease_s),
                    claimed_by=token,
                    attempts=WebhookDelivery.attempts + 1,
                )
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            )
            ids = list(result.scalars().all())
            return await _load(session, ids, token)

    async def replay(self, delivery_id: str) -> Outcome:
        """Send a delivery again now, whatever its state (an admin's replay); its outcome
        is recorded as any attempt's (a failure goes back on the schedule)."""
        now = self.clock()
        token = new_id("clm")
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(
                    state=DeliveryState.PENDING,
                    next_attempt_at=now + timedelta(seconds=self.config.lease_s),
                    claimed_by=token,
                    attempts=WebhookDelivery.attempts + 1,
                )
                .returning(WebhookDelivery.id)
                .execution_options(synchronize_session=False)
            )
            claimed = await _load(session, list(result.scalars().all()), token)
        if not claimed:
            raise WebhookError(
                "webhook_delivery_not_found",
                f"no delivery {delivery_id!r}",
                fields={"delivery_id": "unknown"},
            )
        return await self.attempt(claimed[0])

    async def attempt(self, c: Claimed) -> Outcome:
        outcome = await self.send(c)
        self.attempts += 1
        await self._record(c, outcome)
        return outcome

    async def send(self, c: Claimed) -> Outcome:
        payload = signing.body(c.type, c.created_at, c.payload)
        headers = signing.headers(c.secret, c.message_id, self.clock(), payload)
        headers["content-type"] = "application/json"
        try:
            if not self.config.allow_private:
                await require_public(c.url)
            async with asyncio.timeout(self.config.timeout_s):
                post = self._client.stream("POST", c.url, content=payload, headers=headers)
                async with post as answer:
                    status = answer.status_code  # (its body is never read)
        except TimeoutError:
            return Outcome(None, f"timed out after {self.config.timeout_s:g} s")
        except PrivateAddress as exc:
            return Outcome(None, f"refused: not a public address ({exc})")
        except (httpx.HTTPError, OSError) as exc:
            return Outcome(None, _capped(f"{type(exc).__name__}: {exc}"))
        return Outcome(status, None if 200 <= status < 300 else f"HTTP {status}")

    def delay_s(self, attempts: int) -> float:
        """The wait after the ``attempts``-th attempt failed, with jitter."""
        schedule = self.config.schedule_s
        base = schedule[min(attempts, len(schedule) - 1)]
        spread = self.config.jitter
        return base * random.uniform(1 - spread, 1 + spread)

    async def _record(self, c: Claimed, outcome: Outcome) -> None:
        now = self.clock()
        values: dict[str, Any] = {
            "claimed_by": None,
            "last_status": outcome.status,
            "last_error": outcome.error,
        }
        if outcome.ok:
            values.update(state=DeliveryState.DELIVERED, delivered_at=now, next_attempt_at=None)
        else:
            next_at = now + timedelta(seconds=self.delay_s(c.attempts))
            if next_at > c.created_at + timedelta(seconds=self.config.max_age_s):
                values.update(state=DeliveryState.FAILED, next_attempt_at=None)
            else:
                values.update(state=DeliveryState.PENDING, next_attempt_at=next_at)
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == c.delivery_id, WebhookDelivery.claimed_by == c.token)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        if not result.rowcount:  # type: ignore[attr-defined]
            log.info("webhook outcome dropped: the claim ran out", extra={"id": c.delivery_id})


async def _load(session: AsyncSession, ids: list[str], token: str) -> list[Claimed]:
    if not ids:
        return []
    rows = await session.execute(
        select(WebhookDelivery, WebhookMessage, WebhookEndpoint)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(ids))
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
    )
    return [
        Claimed(
            delivery_id=d.id,
            token=token,
            attempts=d.attempts,
            message_id=m.id,
            type=m.type,
            payload=m.payload,
            created_at=m.created_at,
            url=e.url,
            secret=e.secret,
        )
        for d, m, e in rows.all()
    ]


def _capped(text: str) -> str:
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"
