"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.db import Base, make_engine
from tests.conftest import PG_ADMIN_URL, _pg_create, _pg_drop, _port_open
from web.migrate import alembic_config


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


def _to(connection: Connection, revision: str, down: bool) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(cfg, revision)


async def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to, revision, down)
    finally:
        await engine.dispose()


async def _statuses(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT status FROM orders ORDER BY id"))
            return [row[0] for row in rows]
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no tables yet, on each engine."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        return
    if not _port_open("127.0.0.1", 5432):
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"liveshop_mig_{secrets.token_hex(4)}"
    await _pg_create(name)
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await _pg_drop(name)


async def test_confirmed_orders_become_paid_and_back(empty_db: str) -> None:
    await _migrate(empty_db, "0002_order_total_bigint")
    engine = make_engine(empty_db)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO shows (id, title, status, created_at)"
                    " VALUES ('s', 't', 'live', :t)"
                ),
                {"t": datetime(2026, 1, 1)},
            )
            for n, status in enumerate(("confirmed", "refunded", "confirmed")):
                await conn.execute(
                    text(
                        "INSERT INTO orders (id, show_id, buyer_id, status, total_minor, currency,"
                        " idempotency_key, created_at) VALUES (:id, 's', 'b', :s, 1, 'EUR', :k, :t)"
                    ),
                    {"id": f"o{n}", "s": status, "k": f"k{n}", "t": datetime(2026, 1, 1)},
                )
    finally:
        await engine.dispose()
    await _migrate(empty_db, "0005_order_lifecycle")
    assert await _statuses(empty_db) == ["paid", "refunded", "paid"]
    await _migrate(empty_db, "0002_order_total_bigint", down=True)
    assert await _statuses(empty_db) == ["confirmed", "refunded", "confirmed"]
