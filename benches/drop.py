"""``liveshop bench drop``: a one-tap drop against a real server.

Starts ``liveshop serve`` (uvicorn, ``--workers`` processes) on 127.0.0.1 with a temporary
data folder, an embedded Redis server (or ``REDIS_URL``) and ``DATABASE_URL`` (or a SQLite
file in the data folder); creates a live show with one variant of ``--units`` units; then
``--viewers`` distinct viewers tap buy once and ``--double-taps`` of them tap twice with the
same key, through ``POST /api/shows/{id}/buy``. ``--redis-restart`` stops and restarts the
embedded Redis server mid-drop (its data is lost; the app must notice and rebuild from
SQL). Prints one JSON object as its last line. Every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
import uvloop
from sqlalchemy import func, select

from benches.processes import free_port, spawn, stop
from benches.webhook_sink import Sink, webhook_sink
from checkout.errors import CheckoutError
from checkout.holds import HoldState
from checkout.inventory import Inventory, Reserved, stock_key
from checkout.models import Order, OrderLine, Variant
from core.db import make_engine, make_sessionmaker
from core.roles import Role
from web.auth import TokenIssuer
from web.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "bench-admin-secret-0123"
SECRET = "bench-secret-key-0123456789-abcdefghijkl"  # noqa: S105 - a throwaway server


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveshop bench drop", description=__doc__)
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--double-taps", type=int, default=2_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=200, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--redis-restart", action="store_true", help="restart Redis mid-drop")
    parser.add_argument("--raw-reserves", type=int, default=20_000)
    parser.add_argument("--server-log", type=Path, help="keep the server's log here")
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="register a webhook endpoint for every event (a receiver in this process)",
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.redis_restart and os.environ.get("REDIS_URL"):
        print("--redis-restart needs the embedded Redis server: unset REDIS_URL", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="liveshop-bench-") as tmp:
        result = uvloop.run(_run(args, Path(tmp)))  # the load generator's loop, as the server's
    print(json.dumps(result))
    ok = result["oversold"] == 0 and result["duplicate_orders"] == 0 and result["invariant_ok"]
    return 0 if ok else 1


class Redis:
    """The Redis the server uses: the environment's, or an embedded one we may restart."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.embedded: EmbeddedRedis | None = None
        self.url = os.environ.get("REDIS_URL", "")
        self.external = bool(self.url)
        self.port = free_port()

    def start(self) -> str:
        if not self.external:
            self.embedded = EmbeddedRedis(self.data_dir, port=self.port)
            self.url = self.embedded.start()
        return self.url

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    if not args.webhooks:
        return await _run_drop(args, tmp, None)
    async with webhook_sink() as sink:
        return await _run_drop(args, tmp, sink)


async def _run_drop(args: argparse.Namespace, tmp: Path, sink: Sink | None) -> dict[str, Any]:
    redis_server = Redis(tmp)
    redis_url = redis_server.start()
    db_url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp / 'bench.db'}"
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": redis_url,
        "DATABASE_URL": db_url,
        "LIVESHOP_DATA_DIR": str(tmp),
        "LIVESHOP_ADMIN_SECRET": ADMIN,
        "LIVESHOP_SECRET_KEY": SECRET,
        "LIVESHOP_LOG_LEVEL": "error",
        "LIVESHOP_WEBHOOK_ALLOW_PRIVATE": "true" if sink else "false",
    }
    cmd = [sys.executable, "-m", "web.cli", "serve", "--workers", str(args.workers)]
    server = spawn(
        [*cmd, "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(args.server_log or tmp / "server.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=base,
            limits=httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=None),
            timeout=30,
        ) as http:
            await _wait_ready(http, server)
            if sink is not None:
                hook = {"url": sink.url, "description": "bench"}
                headers = {"Authorization": f"Bearer {ADMIN}"}
                resp = await http.post("/api/webhooks/endpoints", json=hook, headers=headers)
                resp.raise_for_status()
            show_id, variant_id = await _setup(http, args.units)
            drop = await _drop(http, args, show_id, variant_id, redis_server)
        tally = await _tally(
            env["DATABASE_URL"], redis_server.url, show_id, variant_id, drop, args.units
        )
        raw = await _raw_reserves(redis_server.url, args.raw_reserves)
        hooks = await _webhooks_received(sink, tally["orders_in_db"])
    finally:
        stop(server, signal.SIGTERM)
        redis_server.stop()
    return {**drop["summary"], **tally, "redis_raw_reserves_per_s": raw, **hooks}


async def _webhooks_received(sink: Sink | None, orders: int) -> dict[str, Any]:
    """What the receiver got, once it has an order.paid per order in SQL (10 s at most)."""
    if sink is None:
        return {}
    for _ in range(100):
        if len(sink.orders_paid) >= orders:
            break
        await asyncio.sleep(0.1)
    return {
        "webhook_orders_paid": len(sink.orders_paid),
        "webhook_orders_missing": orders - len(sink.orders_paid),
        "webhook_messages": dict(sink.by_type),
        "webhook_requests": sink.requests,
    }


async def _wait_ready(http: httpx.AsyncClient, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited during start")
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready in 60 s")


async def _setup(http: httpx.AsyncClient, units: int) -> tuple[str, str]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    show = (await http.post("/api/shows", json={"title": "Drop"}, headers=admin)).json()
    product = {
        "name": "Limited sneaker",
        "variants": [
            {
                "sku": f"DROP-{secrets.token_hex(4)}",
                "price": {"amount": 12900, "currency": "EUR"},
                "stock": units,
            }
        ],
    }
    resp = await http.post(f"/api/shows/{show['id']}/products", json=product, headers=admin)
    resp.raise_for_status()
    (await http.post(f"/api/shows/{show['id']}/start", headers=admin)).raise_for_status()
    return str(show["id"]), str(resp.json()["variants"][0]["id"])


async def _drop(
    http: httpx.AsyncClient,
    args: argparse.Namespace,
    show_id: str,
    variant_id: str,
    redis_server: Redis,
) -> dict[str, Any]:
    issuer = TokenIssuer(SECRET, 3600)
    run = secrets.token_hex(3)  # buyer ids unique to this run, also in a reused database
    viewers = [
        (issuer.issue(Role.VIEWER, name=f"v{i}", user_id=f"viewer-{run}-{i}"), f"key-{i}")
        for i in range(args.viewers)
    ]
    rng = random.Random(7)
    doubles = set(rng.sample(range(args.viewers), min(args.double_taps, args.viewers)))
    taps: list[int] = []
    for i in range(args.viewers):
        taps.append(i)
        if i in doubles:
            taps.append(i)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in taps:
        queue.put_nowait(i)
    latencies: list[float] = []
    confirmed_latencies: list[float] = []
    statuses: Counter[str] = Counter()
    confirmed: dict[str, set[str]] = {}  # viewer -> order ids the client was told
    body = json.dumps(
        {"variant_id": variant_id, "quantity": 1, "payment_method": "pm_card_ok"}
    ).encode()
    path = f"/api/shows/{show_id}/buy"
    restart_at = len(taps) * 2 // 5 if args.redis_restart else -1
    sent = 0
    host, port = http.base_url.host, http.base_url.port or 80

    async def worker() -> None:
        nonlocal sent
        conn: Conn | None = None
        while not queue.empty():
            i = queue.get_nowait()
            sent += 1
            if sent == restart_at:
                await asyncio.to_thread(_restart, redis_server)
            token, key = viewers[i]
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            t0 = time.perf_counter()
            try:
                conn = conn or await Conn.open(host, port)
                status, payload = await conn.request(head + body)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                statuses["transport_error"] += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            latencies.append(time.perf_counter() - t0)
            if status in (200, 201):
                confirmed_latencies.append(latencies[-1])
                confirmed.setdefault(f"viewer-{run}-{i}", set()).add(payload["order_id"])
                statuses["confirmed"] += 1
            else:
                statuses[payload["error"]["code"]] += 1
        if conn is not None:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    confirmed_latencies.sort()

    def pct(p: float, values: list[float] = latencies) -> float:
        if not values:
            return 0.0
        return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)

    return {
        "confirmed": confirmed,
        "summary": {
            "taps": len(taps),
            "taps_per_s": round(len(taps) / elapsed),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "confirmed_p50_ms": pct(0.50, confirmed_latencies),
            "confirmed_p99_ms": pct(0.99, confirmed_latencies),
            "outcomes": dict(statuses),
            "redis_restarted": bool(args.redis_restart),
        },
    }


class Conn:
    """One keep-alive HTTP/1.1 connection: the load generator's client (httpx's pool
    capped this generator at under 200 requests/s on the 2-core box)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Conn:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, Any]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        data = await self.reader.readexactly(length)
        return status, json.loads(data)

    def close(self) -> None:
        self.writer.close()


def _restart(redis_server: Redis) -> None:
    redis_server.stop()
    redis_server.embedded = None
    redis_server.start()


async def _tally(
    db_url: str, redis_url: str, show_id: str, variant_id: str, drop: dict[str, Any], units: int
) -> dict[str, Any]:
    from config import load_settings

    engine = make_engine(load_settings(database_url=db_url).effective_database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session:
            orders = (
                await session.execute(
                    select(Order.id, Order.buyer_id).where(Order.show_id == show_id)
                )
            ).all()
            sold = int(
                await session.scalar(
                    select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(
                        OrderLine.variant_id == variant_id
                    )
                )
                or 0
            )
            stock = int(
                await session.scalar(select(Variant.stock).where(Variant.id == variant_id)) or 0
            )
    finally:
        await engine.dispose()
    per_buyer = Counter(buyer for _, buyer in orders)
    in_db = {order_id for order_id, _ in orders}
    told: dict[str, set[str]] = drop["confirmed"]
    told_ids = set().union(*told.values()) if told else set()
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await asyncio.sleep(0.5)  # let the sweeper settle holds of failed taps
        raw = await client.hgetall(stock_key(variant_id))
    finally:
        await client.aclose()
    counts = {k: int(raw.get(k, 0)) for k in ("avail", "held", "sold", "listed")}
    redis_ok = counts["avail"] + counts["held"] + counts["sold"] == counts["listed"]
    return {
        "sold": sold,
        "oversold": max(0, sold - units),
        "duplicate_orders": sum(n - 1 for n in per_buyer.values() if n > 1)
        + sum(len(ids) - 1 for ids in told.values() if len(ids) > 1),
        "orders_in_db": len(orders),
        "confirmed_told": len(told_ids),
        "confirmed_missing_in_db": len(told_ids - in_db),
        "invariant_ok": bool(
            redis_ok and stock + sold == units and counts["avail"] + counts["held"] == stock
        ),
        "redis": counts,
        "sql_stock": stock,
    }


async def _raw_reserves(redis_url: str, n: int) -> int:
    """The reserve script alone, from one client: 100 units, ``n`` taps, 64 in flight."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, max_connections=64)
    variant_id = f"bench-raw-{secrets.token_hex(4)}"

    async def stock_of(_: str) -> int:
        return 100

    inventory = Inventory(client, stock_of)
    inventory.register()
    await inventory.load(variant_id)
    counter = iter(range(n))
    held = 0

    async def worker() -> None:
        nonlocal held
        for i in counter:
            try:
                res = await inventory.reserve(
                    variant_id,
                    f"h{i}",
                    buyer_id=f"b{i}",
                    show_id="raw",
                    quantity=1,
                    ttl_ms=60_000,
                    state=HoldState.PAYING,
                    idempotency=(f"k{i}", "fp"),
                )
                held += isinstance(res, Reserved)
            except CheckoutError:  # refusals are the point here
                continue

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(64)))
        elapsed = time.perf_counter() - t0
        assert held == 100, held
        keys = [k async for k in client.scan_iter(match=f"inv:{{{variant_id}}}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
    return round(n / elapsed)
