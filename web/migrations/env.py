"""Alembic environment: runs the migrations on the app's async engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import checkout.models
import checkout.payment_models
import live.models  # noqa: F401  (registers live's tables on the shared metadata)
import web.stream_keys  # noqa: F401  (and the stream keys' table)
import webhooks.models  # noqa: F401  (and webhooks' tables)
from core.db import Base, make_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    asyncio.run(_run_async(url))


assert checkout.models  # keep the import for its side effect
if context.is_offline_mode():
    raise SystemExit("liveshop migrations run online only")
run_migrations_online()
