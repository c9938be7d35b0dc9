"""Payment attempts in SQL: one row per request (buyer, idempotency key), written before the
provider is called, so that any process can finish what a dead one started.

An attempt's life (the moves live in ``ATTEMPT_TRANSITIONS`` only)::

    open -> charging -> ordered | failed | refunded
       \\          \\-> requires_action -> charging (taken over to complete) | ordered | failed
        \\-> failed

Every move is a conditional UPDATE (``WHERE state IN (...) AND owner = ...``): when the
owner and a process settling it race, exactly one move wins and the other follows the
winner's outcome. The unique (buyer, key) pair is the SQL guard against a second charge:
only the process that wrote the row calls the provider for that key, even when Redis forgot
the key or the provider ignores idempotency keys.

Each worker process writes a heartbeat row (``worker_beats``); an attempt whose owner has
been silent for ``DEAD_AFTER_S`` is taken over (``claim``) and settled by another.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.models import AttemptState, Order, PaymentAttempt, WorkerBeat
from checkout.orders import LineSpec
from core.db import insert_ignoring, inserted_keys, new_id, utcnow
from core.group_commit import GroupCommit, bulk_or_alone, run_or_alone
from core.transitions import Transitions

DEAD_AFTER_S = 3.0
"""A worker whose heartbeat is older than this is dead; its attempts are settled by others."""

ATTEMPT_TRANSITIONS = Transitions(
    "payment attempt",
    {
        AttemptState.OPEN: frozenset({AttemptState.CHARGING, AttemptState.FAILED}),
        AttemptState.CHARGING: frozenset(
            {
                AttemptState.REQUIRES_ACTION,
                AttemptState.ORDERED,
                AttemptState.FAILED,
                AttemptState.REFUNDED,
            }
        ),
        AttemptState.REQUIRES_ACTION: frozenset(
            {AttemptState.CHARGING, AttemptState.ORDERED, AttemptState.FAILED}
        ),
        AttemptState.ORDERED: frozenset(),
        AttemptState.FAILED: frozenset(),
        AttemptState.REFUNDED: frozenset(),
    },
)

FINAL = frozenset({AttemptState.ORDERED, AttemptState.FAILED, AttemptState.REFUNDED})
UNSETTLED = frozenset({AttemptState.OPEN, AttemptState.CHARGING})
CHARGED = frozenset({AttemptState.CHARGING, AttemptState.REQUIRES_ACTION})


@dataclass(frozen=True)
class HeldLine:
    """A hold in payment that will become one order line."""

    line: LineSpec
    hold_id: str
    epoch: str
    idem: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "variant_id": self.line.variant_id,
            "quantity": self.line.quantity,
            "unit_price_minor": self.line.unit_price_minor,
            "hold_id": self.hold_id,
            "epoch": self.epoch,
            "idem": self.idem,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> HeldLine:
        line = LineSpec(str(raw["variant_id"]), int(raw["quantity"]), int(raw["unit_price_minor"]))
        return cls(line, str(raw["hold_id"]), str(raw["epoch"]), str(raw.get("idem") or ""))


@dataclass(frozen=True)
class Attempt:
    id: str
    buyer_id: str
    idempotency_key: str
    show_id: str
    amount_minor: int
    currency: str
    provider_ref: str | None
    state: AttemptState
    reason: str | None
    order_id: str | None
    owner: str
    held: tuple[HeldLine, ...]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: PaymentAttempt) -> Attempt:
        return cls(
            row.id,
            row.buyer_id,
            row.idempotency_key,
            row.show_id,
            row.amount_minor,
            row.currency,
            row.provider_ref,
            row.state,
            row.reason,
            row.order_id,
            row.owner,
            tuple(HeldLine.from_json(raw) for raw in row.lines),
            row.created_at,
            row.updated_at,
        )

    @classmethod
    def new(
        cls,
        attempt_id: str,
        buyer_id: str,
        key: str,
        show_id: str,
        amount_minor: int,
        currency: str,
        held: list[HeldLine],
        owner: str = "",
    ) -> Attempt:
        """The view of an attempt just opened (as ``open`` wrote it)."""
        now = utcnow()
        return cls(
            attempt_id, buyer_id, key, show_id, amount_minor, currency, None,
            AttemptState.OPEN, None, None, owner, tuple(held), now, now,
        )  # fmt: skip

    @property
    def lines(self) -> list[LineSpec]:
        return [h.line for h in self.held]


def worker_id() -> str:
    """This process's name in ``worker_beats``: host, pid and a random tail."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Attempts:
    """The attempts' SQL. Writes go through ``group`` (one shared transaction for the
    writes that arrive together, on a thread's loop) when given; reads use ``sessions``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        owner: str,
        group: GroupCommit | None = None,
    ) -> None:
        self.sessions = sessions
        self.owner = owner
        self.group = group

    async def open(
        self,
        *,
        buyer_id: str,
        key: str,
        show_id: str,
        amount_minor: int,
        currency: str,
        provider: str,
        held: list[HeldLine],
        provider_ref: str | None = None,
    ) -> str | None:
        """Write a new attempt; None when the key already has one (nothing is written).
        With ``provider_ref`` (an id the provider let us mint) it starts ``charging``."""
        now = utcnow()
        row = {
            "id": new_id("pay"),
            "buyer_id": buyer_id,
            "idempotency_key": key,
            "show_id": show_id,
            "amount_minor": amount_minor,
            "currency": currency,
            "provider": provider,
            "state": AttemptState.CHARGING if provider_ref else AttemptState.OPEN,
            "provider_ref": provider_ref,
            "owner": self.owner,
            "lines": [h.to_json() for h in held],
            "created_at": now,
            "updated_at": now,
        }
        made = await bulk_or_alone(self.group, self.sessions, _open_many, row)
        return str(row["id"]) if made else None

    async def tombstone(self, *, buyer_id: str, key: str, show_id: str) -> bool:
        """Write a failed attempt for a key that has none (its process died before writing
        it): True when this wrote it, False when the key has an attempt after all."""
        now = utcnow()
        row = {
            "id": new_id("pay"), "buyer_id": buyer_id, "idempotency_key": key,
            "show_id": show_id[:40], "amount_minor": 0, "currency": "", "provider": "",
            "state": AttemptState.FAILED, "reason": "payment_interrupted", "owner": self.owner,
            "lines": [], "created_at": now, "updated_at": now,
        }  # fmt: skip

        async def job(session: AsyncSession) -> int:
            return await insert_ignoring(
                session, PaymentAttempt, [row], ["buyer_id", "idempotency_key"]
            )

        return bool(await run_or_alone(self.group, self.sessions, job))

    async def get(self, buyer_id: str, key: str) -> Attempt | None:
        async with self.sessions() as session:
            row = await session.scalar(
                select(PaymentAttempt).where(
                    PaymentAttempt.buyer_id == buyer_id, PaymentAttempt.idempotency_key == key
                )
            )
            return None if row is None else Attempt.of(row)

    async def by_id(self, attempt_id: str) -> Attempt | None:
        async with self.sessions() as session:
            row = await session.get(PaymentAttempt, attempt_id)
            return None if row is None else Attempt.of(row)

    async def by_ref(self, ref: str) -> Attempt | None:
        async with self.sessions() as session:
            row = await session.scalar(
                select(PaymentAttempt).where(PaymentAttempt.provider_ref == ref)
            )
            return None if row is None else Attempt.of(row)

    async def move(
        self,
        attempt_id: str,
        sources: frozenset[AttemptState],
        target: AttemptState,
        **values: Any,
    ) -> bool:
        """Move the attempt to ``target`` if it is in one of ``sources`` and still ours."""
        for source in sources:
            ATTEMPT_TRANSITIONS.check(source, target)
        item = _Move(attempt_id, sources, target, self.owner, values)
        return bool(await bulk_or_alone(self.group, self.sessions, _move_many, item))

    async def mark_ordered(self, attempt_id: str) -> bool:
        """charging | requires_action -> ordered, once the key's order is in SQL (its id is
        read from there): one fixed statement for the whole batch, whatever its size."""
        for source in CHARGED:
            ATTEMPT_TRANSITIONS.check(source, AttemptState.ORDERED)
        item = (attempt_id, self.owner)
        return bool(await bulk_or_alone(self.group, self.sessions, _ordered_many, item))

    async def claim(self, attempt: Attempt) -> bool:
        """Take an unfinished attempt over from its owner (dead, stuck, or waiting on the
        buyer); False when someone else moved it first."""
        statement = (
            update(PaymentAttempt)
            .where(
                PaymentAttempt.id == attempt.id,
                PaymentAttempt.owner == attempt.owner,
                PaymentAttempt.state == attempt.state,
            )
            .values(owner=self.owner, updated_at=utcnow())
        )
        return await run_or_alone(self.group, self.sessions, _changed_one(statement))

    # -- liveness ------------------------------------------------------------------------

    async def beat(self) -> None:
        async with self.sessions.begin() as session:
            result = await session.execute(
                update(WorkerBeat).where(WorkerBeat.id == self.owner).values(beat_at=utcnow())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                await insert_ignoring(
                    session, WorkerBeat, [{"id": self.owner, "beat_at": utcnow()}], ["id"]
                )
            # forget workers long gone (an hour of silence)
            await session.execute(
                delete(WorkerBeat).where(WorkerBeat.beat_at < utcnow() - timedelta(hours=1))
            )

    async def leave(self) -> None:
        async with self.sessions.begin() as session:
            await session.execute(delete(WorkerBeat).where(WorkerBeat.id == self.owner))

    async def orphans(self, *, stuck_after_s: float, limit: int = 50) -> list[Attempt]:
        """Unsettled attempts whose owner is dead, or that have not moved for
        ``stuck_after_s`` (their owner lost track of them: a provider that did not answer)."""
        now = utcnow()
        alive = select(WorkerBeat.id).where(
            WorkerBeat.beat_at >= now - timedelta(seconds=DEAD_AFTER_S)
        )
        async with self.sessions() as session:
            rows = await session.scalars(
                select(PaymentAttempt)
                .where(
                    PaymentAttempt.state.in_(UNSETTLED),
                    or_(
                        PaymentAttempt.owner.not_in(alive),
                        PaymentAttempt.updated_at < now - timedelta(seconds=stuck_after_s),
                    ),
                )
                .order_by(PaymentAttempt.created_at)
                .limit(limit)
            )
            return [Attempt.of(row) for row in rows.all()]

    async def awaiting_buyer(self, *, older_than_s: float, limit: int = 50) -> list[Attempt]:
        """Attempts that needed the buyer's authentication longer ago than ``older_than_s``."""
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        async with self.sessions() as session:
            rows = await session.scalars(
                select(PaymentAttempt)
                .where(
                    PaymentAttempt.state == AttemptState.REQUIRES_ACTION,
                    PaymentAttempt.updated_at < cutoff,
                )
                .order_by(PaymentAttempt.created_at)
                .limit(limit)
            )
            return [Attempt.of(row) for row in rows.all()]


def _changed_one(statement: Any) -> Callable[[AsyncSession], Awaitable[bool]]:
    """A job running a conditional UPDATE: whether it changed the one row."""

    async def job(session: AsyncSession) -> bool:
        result = await session.execute(statement)
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    return job


async def _open_many(session: AsyncSession, rows: list[dict[str, Any]]) -> list[bool]:
    """One multi-row INSERT of new attempts; whether each went in (False: its key has one)."""
    made = await inserted_keys(session, PaymentAttempt, rows, ["buyer_id", "idempotency_key"])
    return [row["id"] in made for row in rows]


@dataclass(frozen=True)
class _Move:
    attempt_id: str
    sources: frozenset[AttemptState]
    target: AttemptState
    owner: str
    values: dict[str, Any]


async def _move_many(session: AsyncSession, moves: list[_Move]) -> list[bool]:
    """The moves that share sources, target, owner and columns in one UPDATE (the columns'
    values by id: ``CASE``); whether each moved."""
    groups: dict[tuple[Any, ...], list[_Move]] = {}
    for move in moves:
        shape = (move.sources, move.target, move.owner, tuple(sorted(move.values)))
        groups.setdefault(shape, []).append(move)
    moved: set[str] = set()
    now = utcnow()
    for (sources, target, owner, columns), group in groups.items():
        ids = [m.attempt_id for m in group]
        values: dict[str, Any] = {"state": target, "updated_at": now}
        for column in columns:
            values[column] = case(
                {m.attempt_id: m.values[column] for m in group}, value=PaymentAttempt.id
            )
        stmt = (
            update(PaymentAttempt)
            .where(
                PaymentAttempt.id.in_(ids),
                PaymentAttempt.state.in_(sources),
                PaymentAttempt.owner == owner,
            )
            .values(**values)
            .returning(PaymentAttempt.id)
        )
        moved.update((await session.scalars(stmt)).all())
    return [m.attempt_id in moved for m in moves]


async def _ordered_many(session: AsyncSession, items: list[tuple[str, str]]) -> list[bool]:
    """Mark attempts ordered with their order's id, by owner, in one UPDATE per owner."""
    order_id = (
        select(Order.id)
        .where(
            Order.buyer_id == PaymentAttempt.buyer_id,
            Order.idempotency_key == PaymentAttempt.idempotency_key,
        )
        .scalar_subquery()
    )
    done: set[str] = set()
    for owner in {owner for _, owner in items}:
        ids = [attempt_id for attempt_id, who in items if who == owner]
        stmt = (
            update(PaymentAttempt)
            .where(
                PaymentAttempt.id.in_(ids),
                PaymentAttempt.state.in_(CHARGED),
                PaymentAttempt.owner == owner,
                order_id.is_not(None),
            )
            .values(state=AttemptState.ORDERED, order_id=order_id, updated_at=utcnow())
            .returning(PaymentAttempt.id)
        )
        done.update((await session.scalars(stmt)).all())
    return [attempt_id in done for attempt_id, _ in items]
