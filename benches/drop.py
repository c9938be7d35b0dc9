"""``liveshop bench drop``: a one-tap drop against a real server.

Starts ``liveshop serve`` (uvicorn, ``--workers`` processes) on 127.0.0.1 with a temporary
data folder, an embedded Redis server (or ``REDIS_URL``) and ``DATABASE_URL`` (or a SQLite
file in the data folder); creates a live show with one variant of ``--units`` units; then
``--viewers`` distinct viewers tap buy once and ``--double-taps`` of them tap twice with the
same key, through ``POST /api/shows/{id}/buy``. ``--redis-restart`` stops and restarts the
embedded Redis server mid-drop (its data is lost; the app must notice and rebuild from
SQL); ``--kill-worker`` SIGKILLs the busier uvicorn worker a third of the way into the
units (payments in flight; uvicorn starts a new one). ``--provider stripe`` runs a
localstripe server (the tests' loopback wrapper) and pays with cards each viewer saved
first (with fewer viewers: each saves a card).

After a fault the benchmark waits until 10 s after it, then counts what is still stuck
(``keys_unresolved_after_10s``: one-tap keys still pending in Redis;
``units_held_by_dead_after_10s``: units still held, with no request left in flight),
replays with the same key every tap that was confirmed or got no definitive answer
(``replay_mismatches``: a confirmed tap answered anything but its order, or a tap that got
no answer still without one, or answered an order that is not in SQL), counts
``server_errors`` (5xx other than ``inventory_unavailable``, in the drop and the replays),
and reads the provider's own books: ``charges_without_order`` (money taken, not refunded,
with no order) and ``double_charges`` (a key charged more than once). Prints one JSON
object as its last line. Every process it starts is stopped.
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

from benches.processes import free_port, spawn, stop, wait_http_ok
from benches.webhook_sink import Sink, webhook_sink
from checkout.errors import CheckoutError
from checkout.holds import HoldState
from checkout.inventory import Inventory, Reserved, stock_key
from checkout.models import Order, OrderLine, PaymentAttempt, TestPayment, Variant
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
    parser.add_argument(
        "--kill-worker", action="store_true", help="SIGKILL the busier worker mid-drop"
    )
    parser.add_argument("--provider", choices=["test", "stripe"], default="test")
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
    ok = ok and all(
        result[k] == 0
        for k in (
            "keys_unresolved_after_10s", "units_held_by_dead_after_10s", "server_errors",
            "replay_mismatches", "charges_without_order", "double_charges",
        )
    )  # fmt: skip
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
    stripe_server: subprocess.Popen[bytes] | None = None
    stripe_base = ""
    if args.provider == "stripe":
        stripe_server, stripe_base = _start_localstripe(tmp)
        env.update(STRIPE_ENV)
        env["LIVESHOP_STRIPE_API_BASE"] = stripe_base
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
            viewers = _viewers(args.viewers)
            method = "pm_card_ok"
            if stripe_base:
                await _save_cards(http, viewers, stripe_base)
                method = "saved"
            fault = Fault(args, redis_server, server.pid)
            drop = await _drop(http, args, show_id, variant_id, viewers, method, fault)
            after = await _after_fault(http, redis_server.url, variant_id, drop, fault, show_id)
        tally = await _tally(
            env["DATABASE_URL"], redis_server.url, show_id, variant_id, drop, args.units
        )
        books = await _provider_books(env["DATABASE_URL"], show_id, stripe_base)
        raw = await _raw_reserves(redis_server.url, args.raw_reserves)
        hooks = await _webhooks_received(sink, tally["orders_in_db"])
    finally:
        stop(server, signal.SIGTERM)
        redis_server.stop()
        if stripe_server is not None:
            stop(stripe_server, signal.SIGTERM)
    return {
        **drop["summary"], **after, **tally, **books, "provider": args.provider,
        "redis_raw_reserves_per_s": raw, **hooks,
    }  # fmt: skip


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


STRIPE_ENV = {
    "LIVESHOP_PAYMENT_PROVIDER": "stripe",
    "LIVESHOP_STRIPE_SECRET_KEY": "sk_test_liveshop",
    "LIVESHOP_STRIPE_PUBLISHABLE_KEY": "pk_test_liveshop",
    "LIVESHOP_STRIPE_WEBHOOK_SECRET": "whsec_test_liveshop",
}


def _start_localstripe(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The tests' localstripe (loopback only, state in memory: ``tests/localstripe_server.py``,
    so this needs the repository's checkout, not only the installed package)."""
    port = free_port()
    repo = Path(__file__).resolve().parents[1]
    proc = spawn(
        [sys.executable, "-m", "tests.localstripe_server", "--port", str(port)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "localstripe.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/js.stripe.com/v3/", proc)
    except RuntimeError:
        stop(proc, signal.SIGTERM)
        raise
    return proc, base


def _tests_importable() -> None:
    """``--provider stripe`` borrows the tests' Stripe helpers (the page's part of saving a
    card): the repository's checkout on the path."""
    repo = str(Path(__file__).resolve().parents[1])
    if repo not in sys.path:
        sys.path.insert(0, repo)


class Fault:
    """The fault a run injects, when, and how long after it the stuck state is counted."""

    def __init__(self, args: argparse.Namespace, redis_server: Redis, server_pid: int) -> None:
        self.redis_server = redis_server
        self.server_pid = server_pid
        self.kind = (
            "kill_worker" if args.kill_worker else "redis_restart" if args.redis_restart else ""
        )
        self.at: float | None = None
        self.killed_pid: int | None = None

    def inject(self) -> None:
        self.at = time.monotonic()
        if self.kind == "redis_restart":
            _restart(self.redis_server)
        elif self.kind == "kill_worker":
            self.killed_pid = _busier_worker(self.server_pid)
            os.kill(self.killed_pid, signal.SIGKILL)


def _busier_worker(server_pid: int) -> int:
    """The uvicorn worker (a child of the server) with the most CPU time so far."""
    best, best_cpu = 0, -1
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) != server_pid or b"spawn_main" not in cmdline:
            continue
        cpu = int(fields[11]) + int(fields[12])
        if cpu > best_cpu:
            best, best_cpu = int(entry), cpu
    if not best:
        raise RuntimeError("no uvicorn worker found to kill")
    return best


def _viewers(n: int) -> list[tuple[str, str, str]]:
    """(user id, token, idempotency key) of each viewer, unique to this run."""
    issuer = TokenIssuer(SECRET, 3600)
    run = secrets.token_hex(3)  # buyer ids unique to this run, also in a reused database
    out = []
    for i in range(n):
        user_id = f"viewer-{run}-{i}"
        out.append((user_id, issuer.issue(Role.VIEWER, name=f"v{i}", user_id=user_id), f"key-{i}"))
    return out


async def _save_cards(
    http: httpx.AsyncClient, viewers: list[tuple[str, str, str]], stripe_base: str
) -> None:
    """Each viewer saves a card first, as the page does (SetupIntent, Stripe.js's confirm)."""
    _tests_importable()
    from tests.stripe_support import OK_CARD, confirm_setup_as_page

    gate = asyncio.Semaphore(16)

    async def one(token: str) -> None:
        auth = {"Authorization": f"Bearer {token}"}
        async with gate:
            setup = await http.post("/api/payment-methods/setup", headers=auth)
            setup.raise_for_status()
            done = await confirm_setup_as_page(stripe_base, setup.json()["client_secret"], OK_CARD)
            done.raise_for_status()
            saved = await http.post(
                "/api/payment-methods",
                json={"payment_method_id": done.json()["payment_method"]},
                headers=auth,
            )
            saved.raise_for_status()

    await asyncio.gather(*(one(token) for _, token, _ in viewers))


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
    viewers: list[tuple[str, str, str]],
    method: str,
    fault: Fault,
) -> dict[str, Any]:
    rng = random.Random(7)
    doubles = set(rng.sample(range(len(viewers)), min(args.double_taps, len(viewers))))
    taps: list[int] = []
    for i in range(len(viewers)):
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
    unanswered: set[int] = set()  # taps with no definitive answer (transport error, 5xx...)
    server_errors = 0
    body = json.dumps({"variant_id": variant_id, "quantity": 1, "payment_method": method})
    path = f"/api/shows/{show_id}/buy"
    restart_at = len(taps) * 2 // 5 if fault.kind == "redis_restart" else -1
    kill_after = max(1, args.units // 3) if fault.kind == "kill_worker" else -1
    sent = 0
    host, port = http.base_url.host, http.base_url.port or 80

    async def worker() -> None:
        nonlocal sent, server_errors
        conn: Conn | None = None
        while not queue.empty():
            i = queue.get_nowait()
            sent += 1
            if sent == restart_at:
                await asyncio.to_thread(fault.inject)
            user_id, token, key = viewers[i]
            t0 = time.perf_counter()
            try:
                conn = conn or await Conn.open(host, port)
                status, payload = await conn.request(_buy_request(path, host, token, key, body))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                statuses["transport_error"] += 1
                unanswered.add(i)
                if conn is not None:
                    conn.close()
                conn = None
                continue
            latencies.append(time.perf_counter() - t0)
            if status in (200, 201):
                confirmed_latencies.append(latencies[-1])
                confirmed.setdefault(user_id, set()).add(payload["order_id"])
                statuses["confirmed"] += 1
                if statuses["confirmed"] == kill_after and fault.at is None:
                    fault.inject()
                continue
            code = payload["error"]["code"]
            statuses[code] += 1
            if status >= 500 and code != "inventory_unavailable":
                server_errors += 1
            if status >= 500 or code == "request_in_progress":
                unanswered.add(i)
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
        "unanswered": unanswered,
        "viewers": viewers,
        "path": path,
        "body": body,
        "server_errors": server_errors,
        "summary": {
            "taps": len(taps),
            "taps_per_s": round(len(taps) / elapsed),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "confirmed_p50_ms": pct(0.50, confirmed_latencies),
            "confirmed_p99_ms": pct(0.99, confirmed_latencies),
            "outcomes": dict(statuses),
            "redis_restarted": fault.kind == "redis_restart",
            "worker_killed": fault.killed_pid is not None,
        },
    }


def _buy_request(path: str, host: str, token: str, key: str, body: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


async def _after_fault(
    http: httpx.AsyncClient,
    redis_url: str,
    variant_id: str,
    drop: dict[str, Any],
    fault: Fault,
    show_id: str,
) -> dict[str, Any]:
    """10 s after the fault (or the drop's end): what is stuck, then the replays."""
    if fault.at is not None:
        await asyncio.sleep(max(0.0, fault.at + 10.0 - time.monotonic()))
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        pending = 0
        async for name in client.scan_iter(match=f"inv:{{{variant_id}}}:idem:*", count=1000):
            pending += await client.hget(name, "state") == "pending"
        held = int(await client.hget(stock_key(variant_id), "held") or 0)
    finally:
        await client.aclose()
    viewers: list[tuple[str, str, str]] = drop["viewers"]
    confirmed: dict[str, set[str]] = drop["confirmed"]
    index = {user_id: i for i, (user_id, _, _) in enumerate(viewers)}
    again = sorted(drop["unanswered"] | {index[u] for u in confirmed})
    mismatches, server_errors = 0, int(drop["server_errors"])
    host, port = http.base_url.host, http.base_url.port or 80
    conn = await Conn.open(host, port)
    try:
        for i in again:
            user_id, token, key = viewers[i]
            status, payload = await conn.request(
                _buy_request(drop["path"], host, token, key, drop["body"])
            )
            told = confirmed.get(user_id, set())
            if status in (200, 201):
                if told and payload["order_id"] not in told:
                    mismatches += 1
                confirmed.setdefault(user_id, set()).add(payload["order_id"])
                continue
            code = payload["error"]["code"]
            if status >= 500 and code != "inventory_unavailable":
                server_errors += 1
            if told or status >= 500 or code == "request_in_progress":
                mismatches += 1  # an order forgotten, or still no definitive answer
    finally:
        conn.close()
    return {
        "fault": fault.kind or None,
        "keys_unresolved_after_10s": pending,
        "units_held_by_dead_after_10s": held,
        "replays": len(again),
        "replay_mismatches": mismatches,
        "server_errors": server_errors,
    }


async def _provider_books(db_url: str, show_id: str, stripe_base: str) -> dict[str, Any]:
    """What the provider's own books say was charged, against the orders in SQL."""
    from config import load_settings

    engine = make_engine(load_settings(database_url=db_url).effective_database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session:
            refs = set(
                (
                    await session.scalars(select(Order.payment_ref).where(Order.show_id == show_id))
                ).all()
            )
            keys = dict(
                (
                    await session.execute(
                        select(PaymentAttempt.id, PaymentAttempt.idempotency_key).where(
                            PaymentAttempt.show_id == show_id
                        )
                    )
                ).all()
            )
            if stripe_base:
                kept = await _stripe_kept(stripe_base, set(keys))
            else:
                rows = (
                    await session.execute(
                        select(
                            TestPayment.id, TestPayment.attempt_id, TestPayment.buyer_id,
                            TestPayment.idempotency_key,
                        ).where(
                            TestPayment.state == "succeeded",
                            TestPayment.refunded_minor < TestPayment.amount_minor,
                            TestPayment.attempt_id.in_(list(keys)),
                        )
                    )
                ).all()  # fmt: skip
                kept = [(r[0], f"{r[2]}|{r[3]}") for r in rows]
    finally:
        await engine.dispose()
    per_key = Counter(key for _, key in kept)
    return {
        "charges": len(kept),
        "charges_without_order": sum(1 for ref, _ in kept if ref not in refs),
        "double_charges": sum(n - 1 for n in per_key.values() if n > 1),
    }


async def _stripe_kept(base: str, attempts: set[str]) -> list[tuple[str, str]]:
    """(PaymentIntent, buyer|attempt) of every charge localstripe kept (not refunded)."""
    _tests_importable()
    from tests.stripe_support import stripe_client

    kept: list[tuple[str, str]] = []
    async with stripe_client(base) as client:
        intents = await client.v1.payment_intents.list_async({"limit": 100})
        refunds = await client.v1.refunds.list_async({"limit": 100})
        refunded = {r.payment_intent async for r in refunds.auto_paging_iter()}
        async for intent in intents.auto_paging_iter():
            meta = intent.metadata.to_dict()
            ours = meta.get("attempt_id") in attempts and intent.id not in refunded
            if intent.status == "succeeded" and ours:
                kept.append((intent.id, f"{meta.get('buyer_id')}|{meta.get('attempt_id')}"))
    return kept


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
