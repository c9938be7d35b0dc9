"""Shared fixtures: real Redis and real databases, never mocks.

Redis: the server on 127.0.0.1:6379 when one answers (each test session claims a free
logical database there, so parallel runs do not collide), else an embedded Valkey server.
Databases: every test that takes ``db_url`` runs on SQLite and on PostgreSQL
(127.0.0.1:5432, database ``test``; a fresh database is created per session). Without a
PostgreSQL server the PostgreSQL half is skipped, except under CI, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import text
from starlette.applications import Starlette

from benches.fanout import server_processes
from benches.processes import free_port, spawn, stop, wait_http_ok
from config import Settings, load_settings
from core.db import Base, make_engine
from web.app import create_app
from web.embedded_redis import EmbeddedRedis
from web.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "LIVESHOP_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
ADMIN_SECRET = "test-admin-secret-123"
ROOT = Path(__file__).resolve().parents[1]


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _port_open("127.0.0.1", 6379):
        admin = redis.Redis(host="127.0.0.1", port=6379, db=0)
        token = secrets.token_hex(8)
        for db in range(1, 16):
            if admin.set(f"liveshop:test-claim:{db}", token, nx=True, ex=3600):
                break
        else:
            pytest.fail("no free Redis logical database to claim on 127.0.0.1:6379")
        try:
            yield f"redis://127.0.0.1:6379/{db}"
        finally:
            redis.Redis(host="127.0.0.1", port=6379, db=db).flushdb()
            admin.delete(f"liveshop:test-claim:{db}")
            admin.close()
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("valkey"))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


async def _pg_create(name: str) -> None:
    engine = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


async def _pg_drop(name: str) -> None:
    engine = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "test.db"
    url = f"sqlite+aiosqlite:///{path}"
    asyncio.run(_migrate(url))
    return url


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    if not _port_open("127.0.0.1", 5432):
        if os.environ.get("CI"):
            pytest.fail("CI runs the database tests on PostgreSQL: none on 127.0.0.1:5432")
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    name = f"liveshop_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_pg_create(name))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        asyncio.run(_migrate(url))
        yield url
    finally:
        asyncio.run(_pg_drop(name))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A migrated, emptied database: each test that takes it runs on both engines."""
    name = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    url: str = request.getfixturevalue(name)
    asyncio.run(_truncate(url))
    return url


async def _truncate(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                await conn.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


def make_settings(tmp_path: Path, db_url: str, redis_url: str, **extra: Any) -> Settings:
    return load_settings(
        database_url=db_url,
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-0123456789-abcdefghij",
        admin_secret=ADMIN_SECRET,
        **extra,
    )


@pytest.fixture
def settings(tmp_path: Path, db_url: str, redis_url: str) -> Settings:
    return make_settings(tmp_path, db_url, redis_url)


@pytest.fixture
async def app(settings: Settings, redis_client: aioredis.Redis) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def two_server_ports(two_server_processes: list[tuple[int, int]]) -> list[int]:
    """The ports of ``two_server_processes``."""
    return [port for port, _ in two_server_processes]


@pytest.fixture
def two_server_processes(settings: Settings, tmp_path: Path) -> Iterator[list[tuple[int, int]]]:
    """Two real server processes (uvicorn, the app made from the environment) on the test's
    database and Redis, ICE on 127.0.0.1 only: (port, pid) each. Both are stopped at the end
    (one the test killed too)."""
    with server_processes(2, server_env(settings, tmp_path), tmp_path) as servers:
        yield servers


def server_env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A real server process's environment: the test's database and Redis, ICE on
    127.0.0.1 only, quiet logs; ``extra``: more variables."""
    return {
        **os.environ,
        "DATABASE_URL": str(settings.database_url),
        "REDIS_URL": str(settings.redis_url),
        "LIVESHOP_SECRET_KEY": str(settings.secret_key),
        "LIVESHOP_DATA_DIR": str(tmp_path / "data"),
        "LIVESHOP_ICE_HOST_ADDRESSES": "127.0.0.1",
        "LIVESHOP_LOG_LEVEL": "warning",
        **extra,
    }


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_SECRET}"}


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real localstripe server (a stateful Stripe-compatible API) on 127.0.0.1 for the
    session, through ``tests/localstripe_server.py`` (loopback only, state in memory);
    stopped, with anything it started, at the end."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("localstripe") / "localstripe.log"
    with log_path.open("wb") as log:
        proc = spawn(
            [sys.executable, "-m", "tests.localstripe_server", "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http_ok(f"{url}/js.stripe.com/v3/", proc)
            yield url
        finally:
            stop(proc, timeout_s=5)
