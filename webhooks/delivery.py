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
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Table, bindparam, func, select, update
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

GONE = 410

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
        """How long a claim lasts: past it another worker may send the delivery again. It
        covers a whole pass (the last of ``batch`` attempts, ``concurrency`` at a time,
        each at most ``timeout_s``) and the recording of its outcomes."""
        return self.timeout_s * math.ceil(self.batch / self.concurrency) + 30.0


@dataclass(frozen=True)
class Claimed:
    delivery_id: str
    endpoint_id: str
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
        """One pass: claim at most ``batch`` due deliveries, send each, record what came
        of them in one transaction; how many were claimed."""
        claimed = await self.claim_due()
        if not claimed:
            return 0
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(c: Claimed) -> Outcome:
            async with gate:
                return await self.send(c)

        outcomes = await asyncio.gather(*(one(c) for c in claimed))
        await self._record(list(zip(claimed, outcomes, strict=True)))
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
        """Send one claimed delivery and record what came of it."""
        outcome = await self.send(c)
        await self._record([(c, outcome)])
        return outcome

    async def send(self, c: Claimed) -> Outcome:
        payload = signing.body(c.type, c.created_at, c.payload)
        self.attempts += 1
        headers = signing.headers(c.secret, c.message_id, self.clock(), payload)
        headers["content-type"] = "application/json"
        try:
            if not self.config.allow_private:
                await require_public(c.url)
            async with asyncio.timeout(self.config.timeout_s):
                post = self._client.stream("POST", c.url, content=payload, headers=headers)
                async with post as answer:
                    status = answer.status_code
                    await _skim(answer)
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

    async def _record(self, done: list[tuple[Claimed, Outcome]]) -> None:
        """The outcomes of claimed attempts, in one transaction; each is written only
        while its claim is still the one that sent it (a claim that ran out and was taken
        again belongs to the worker that took it)."""
        now = self.clock()
        rows: list[dict[str, Any]] = []
        for c, outcome in done:
            row: dict[str, Any] = {
                "b_id": c.delivery_id,
                "b_token": c.token,
                "b_status": outcome.status,
                "b_error": outcome.error,
                "b_state": DeliveryState.PENDING,
                "b_next": None,
                "b_delivered": None,
            }
            if outcome.ok:
                row.update(b_state=DeliveryState.DELIVERED, b_delivered=now)
            else:
                next_at = now + timedelta(seconds=self.delay_s(c.attempts))
                if next_at > c.created_at + timedelta(seconds=self.config.max_age_s):
                    row.update(b_state=DeliveryState.FAILED)
                else:
                    row.update(b_next=next_at)
            rows.append(row)
        table = WebhookDelivery.__table__
        assert isinstance(table, Table)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.claimed_by == bindparam("b_token"))
            .values(
                state=bindparam("b_state"),
                next_attempt_at=bindparam("b_next"),
                claimed_by=None,
                last_status=bindparam("b_status"),
                last_error=bindparam("b_error"),
                delivered_at=func.coalesce(bindparam("b_delivered"), table.c.delivered_at),
            )
        )
        # 410 Gone: the receiver wants no more (Standard Webhooks): the endpoint is disabled
        gone = sorted({c.endpoint_id for c, outcome in done if outcome.status == GONE})
        async with self.sessions.begin() as session:
            await (await session.connection()).execute(stmt, rows)
            if gone:
                await session.execute(
                    update(WebhookEndpoint)
                    .where(WebhookEndpoint.id.in_(gone))
                    .values(enabled=False)
                    .execution_options(synchronize_session=False)
                )
        if gone:
            log.warning("webhook endpoints answered 410 Gone: disabled", extra={"ids": gone})


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
            endpoint_id=d.endpoint_id,
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


ANSWER_READ_BYTES = 64 * 1024


async def _skim(answer: httpx.Response) -> None:
    """Read a short answer's body, so that its connection goes back to the pool (an
    unread one is closed: a new connection, and a TLS handshake, for every attempt); past
    ``ANSWER_READ_BYTES`` stop, and the connection is closed instead."""
    read = 0
    async for chunk in answer.aiter_raw():
        read += len(chunk)
        if read > ANSWER_READ_BYTES:
            return


def _capped(text: str) -> str:
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"
