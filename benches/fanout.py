"""``liveshop bench fanout``: the live channel's fan-out to N websocket viewers.

It starts real server processes (uvicorn, ``--processes 1|2``) on one Redis and one
database, connects N anonymous viewers from several client processes, then:

- broadcasts product-card updates (the host pins and unpins a card over its socket) and
  measures, per viewer, the time from the host's request to the card event arriving;
- runs a chat storm (many posters, each a burst of chat) and measures how many chat
  messages per second reach every viewer.

The last line printed is one JSON object. Every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing as mp
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from benches.processes import free_ports, redis_url_for, spawn, stop
from checkout import catalog
from checkout.show_state import ShowStatus
from core.db import make_engine, make_sessionmaker

WAIT_S = 30.0


# -- server processes ----------------------------------------------------------------------


@contextlib.contextmanager
def server_processes(
    count: int, env: dict[str, str], log_dir: Path
) -> Iterator[list[tuple[int, int]]]:
    """``count`` uvicorn processes serving the app on 127.0.0.1: (port, pid) each.

    Every one is stopped on exit (terminate, then its process group is killed after 10 s)."""
    ports = free_ports(count)
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for port in ports:
            log = (log_dir / f"server-{port}.log").open("wb")
            logs.append(log)
            procs.append(
                spawn(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "--factory",
                        "web.app:app_from_env",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--ws",
                        "websockets-sansio",
                        "--backlog",
                        "4096",
                        "--log-level",
                        "warning",
                        "--no-access-log",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + WAIT_S
        for port, proc in zip(ports, procs, strict=True):
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server on {port} exited: see {log_dir}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server on {port} did not start")
                time.sleep(0.1)
        yield [(port, proc.pid) for port, proc in zip(ports, procs, strict=True)]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            stop(proc, signal.SIGTERM, timeout_s=10)
        for log in logs:
            log.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- viewers (client processes) ------------------------------------------------------------


def _viewer_process(urls: list[str], count: int, pipe: Connection) -> None:
    asyncio.run(_viewers(urls, count, pipe))


class _Tally:
    """What one client process saw."""

    def __init__(self) -> None:
        self.cards: dict[str, list[tuple[int, float]]] = {}
        self.chat = 0
        self.chat_last = 0.0
        self.closed = 0
        self.first_close = 0.0


class _RawViewer(asyncio.Protocol):
    """A minimal websocket reader: the handshake, unmasked server frames, pongs.

    The bench measures the server; the websockets client library costs about 40 us of
    Python per message, which on two cores would measure the client instead.
    """

    def __init__(self, server: int, tally: _Tally) -> None:
        self.server = server
        self.tally = tally
        self.buf = bytearray()
        self.upgraded = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self._fail(ConnectionError(bytes(buf[:40]).decode(errors="replace")))
                return
            del buf[: end + 4]
            self.upgraded = True
        while len(buf) >= 2:
            size, offset = buf[1] & 0x7F, 2
            if size == 126:
                if len(buf) < 4:
                    return
                size, offset = int.from_bytes(buf[2:4], "big"), 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size, offset = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < offset + size:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[offset : offset + size])
            del buf[: offset + size]
            if opcode == 0x1:
                self._text(payload)
            elif opcode == 0x9 and self.transport is not None:  # ping: a masked pong
                self.transport.write(bytes([0x8A, 0x80 | len(payload), 0, 0, 0, 0]) + payload)
            elif opcode == 0x8:
                self._closed()

    def _text(self, payload: bytes) -> None:
        if b'"type":"card_' in payload:
            event_id = payload[7 : payload.index(b'"', 7)].decode()
            self.tally.cards.setdefault(event_id, []).append((self.server, time.time()))
        elif b'"type":"chat"' in payload:
            self.tally.chat += payload.count(b'"type":"chat"')
            self.tally.chat_last = time.time()
        elif b'"type":"snapshot"' in payload and not self.ready.done():
            self.ready.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _closed(self) -> None:
        self.tally.closed += 1
        if not self.tally.first_close:
            self.tally.first_close = time.time()
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed before the snapshot"))


async def _open_viewer(url: str, server: int, tally: _Tally) -> _RawViewer:
    rest = url.removeprefix("ws://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    loop = asyncio.get_running_loop()
    _, viewer = await loop.create_connection(lambda: _RawViewer(server, tally), host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    assert viewer.transport is not None
    viewer.transport.write(request.encode())
    async with asyncio.timeout(WAIT_S):
        await viewer.ready
    return viewer


async def _viewers(urls: list[str], count: int, pipe: Connection) -> None:
    tally = _Tally()
    viewers: list[_RawViewer] = []
    failed = 0
    gate = asyncio.Semaphore(100)

    async def one(index: int) -> None:
        nonlocal failed
        async with gate:
            for attempt in range(5):
                try:
                    server = index % len(urls)
                    viewers.append(await _open_viewer(urls[server], server, tally))
                    return
                except (OSError, TimeoutError):
                    await asyncio.sleep(0.2 * (attempt + 1))
            failed += 1

    await asyncio.gather(*(one(i) for i in range(count)))
    pipe.send(("ready", len(viewers), time.time()))
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
    pipe.send(
        {
            "cards": tally.cards,
            "chat_count": tally.chat,
            "chat_last": tally.chat_last,
            "closed_early": tally.closed,
            "first_close": tally.first_close,
        }
    )
    for viewer in viewers:
        if viewer.transport is not None:
            viewer.transport.abort()


# -- the controller --------------------------------------------------------------------------


async def _seed(database_url: str) -> tuple[str, list[str]]:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            show = await catalog.create_show(session, "Fan-out bench")
            ids = []
            for n in range(3):
                spec = catalog.ProductSpec(
                    name=f"Bench product {n}",
                    image_url=f"https://img.example/{n}.png",
                    variants=[catalog.VariantSpec(f"B-{show.id}-{n}", 1999, "EUR", 100)],
                )
                ids.append((await catalog.add_product(session, show.id, spec)).id)
            await catalog.change_status(session, show.id, ShowStatus.LIVE)
            return show.id, ids
    finally:
        await engine.dispose()


def issue_tokens(env: dict[str, str], show_id: str, posters: int) -> tuple[str, list[str]]:
    """A host token of the show and ``posters`` viewer tokens, signed as the server does."""
    code = (
        "import json,sys\n"
        "from core.roles import Role\n"
        "from config import load_settings\n"
        "from web.auth import TokenIssuer\n"
        "s = load_settings()\n"
        "t = TokenIssuer(s.signing_key(), 3600)\n"
        f"print(json.dumps([t.issue(Role.HOST, name='bench', show_id={show_id!r})]"
        f" + [t.issue(Role.VIEWER, name=f'p{{i}}') for i in range({posters})]))\n"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, timeout=60
    )
    tokens: list[str] = json.loads(out.stdout)
    return tokens[0], tokens[1:]


async def _pin_or_unpin(ws: ClientConnection, ref: str, kind: str, product_id: str) -> str:
    """Send one card change; return the id of its card event (it may come before the ok)."""
    await ws.send(json.dumps({"type": kind, "ref": ref, "product_id": product_id}))
    replied, event_id = False, ""
    async with asyncio.timeout(WAIT_S):
        while not (replied and event_id):
            message: dict[str, Any] = json.loads(await ws.recv())
            if message.get("ref") == ref:
                if message["type"] != "ok":
                    raise RuntimeError(f"host request refused: {message}")
                replied = True
            elif message["type"] in ("card_pinned", "card_unpinned"):
                event_id = str(message["id"])
    return event_id


async def _broadcasts(
    base: str, show_id: str, host_token: str, product_id: str, count: int, gap_s: float
) -> dict[str, float]:
    sent: dict[str, float] = {}
    async with connect(f"{base}/live/{show_id}?token={host_token}", max_size=2**22) as ws:
        for n in range(count):
            kind = "pin" if n % 2 == 0 else "unpin"
            started = time.time()
            sent[await _pin_or_unpin(ws, f"b{n}", kind, product_id)] = started
            await asyncio.sleep(gap_s)
    return sent


async def _chat_storm(base: str, show_id: str, tokens: list[str], burst: int) -> float:
    """Every poster sends ``burst`` chat messages at once, then waits for its replies."""
    sockets = [
        await connect(f"{base}/live/{show_id}?token={token}", max_size=2**22) for token in tokens
    ]
    started = time.time()

    async def post(index: int, ws: ClientConnection) -> None:
        for n in range(burst):
            await ws.send(json.dumps({"type": "chat", "ref": f"c{n}", "text": f"p{index} m{n}"}))
        replies = 0
        async with asyncio.timeout(WAIT_S):
            while replies < burst:
                message = json.loads(await ws.recv())
                if message.get("ref", "").startswith("c"):
                    if message["type"] != "ok":
                        raise RuntimeError(f"chat refused: {message}")
                    replies += 1

    await asyncio.gather(*(post(i, ws) for i, ws in enumerate(sockets)))
    for ws in sockets:
        ws.transport.abort()
    return started


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="liveshop bench fanout")
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--processes", type=int, choices=[1, 2], default=1)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--broadcasts", type=int, default=10)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between broadcasts")
    parser.add_argument("--posters", type=int, default=100)
    parser.add_argument("--burst", type=int, default=5, help="chat messages per poster")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    args = parser.parse_args(argv)

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with tempfile.TemporaryDirectory(prefix="liveshop-bench-") as tmp:
        workdir = Path(tmp)
        with redis_url_for(workdir, args.redis_url) as redis_url:
            return _run(args, workdir, redis_url)


def migrated_env(workdir: Path, redis_url: str, **settings: str) -> tuple[dict[str, str], str]:
    """The server's environment for a bench (a SQLite file in ``workdir``, ``redis_url``,
    quiet logs, then ``settings``), with its database migrated; and the database's URL."""
    database_url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "LIVESHOP_DATA_DIR": str(workdir),
        "LIVESHOP_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijkl",
        "LIVESHOP_LOG_LEVEL": "warning",
        **settings,
    }
    subprocess.run(
        [sys.executable, "-m", "web.cli", "migrate"], env=env, check=True, capture_output=True
    )
    return env, database_url


def _run(args: argparse.Namespace, workdir: Path, redis_url: str) -> int:
    # every viewer is anonymous and on 127.0.0.1: one address, far past the default
    env, database_url = migrated_env(
        workdir, redis_url, LIVESHOP_MAX_SOCKETS_PER_ADDRESS=str(max(50, args.viewers))
    )
    show_id, product_ids = asyncio.run(_seed(database_url))
    host_token, poster_tokens = issue_tokens(env, show_id, args.posters)
    with server_processes(args.processes, env, workdir) as servers:
        ports = [port for port, _ in servers]
        server_pids = [pid for _, pid in servers]
        bases = [f"ws://127.0.0.1:{port}" for port in ports]
        urls = [f"{base}/live/{show_id}" for base in bases]
        ctx = mp.get_context("spawn")
        pipes, workers = [], []
        share = [args.viewers // args.clients] * args.clients
        share[0] += args.viewers - sum(share)
        try:
            for count in share:
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=_viewer_process, args=(urls, count, theirs))
                proc.start()
                pipes.append(ours)
                workers.append(proc)
            connected = 0
            for pipe in pipes:
                if not pipe.poll(300):
                    raise RuntimeError("viewers did not connect in time")
                connected += pipe.recv()[1]
            idle0, idle_at = sum(cpu_seconds(pid) for pid in server_pids), time.monotonic()
            time.sleep(3.0)  # the idle cost: viewer counts each second, keepalive pings
            cpu0, at0 = sum(cpu_seconds(pid) for pid in server_pids), time.monotonic()
            idle_rate = (cpu0 - idle0) / (at0 - idle_at)
            sent = asyncio.run(
                _broadcasts(
                    bases[0], show_id, host_token, product_ids[0], args.broadcasts, args.gap
                )
            )
            time.sleep(1.0)
            cpu1, at1 = sum(cpu_seconds(pid) for pid in server_pids), time.monotonic()
            broadcast_cpu = max(0.0, cpu1 - cpu0 - idle_rate * (at1 - at0))
            chat_started = asyncio.run(_chat_storm(bases[0], show_id, poster_tokens, args.burst))
            time.sleep(6.0)  # let the storm drain before the viewers report
            for pipe in pipes:
                pipe.send("stop")
            results = [pipe.recv() for pipe in pipes if pipe.poll(120)]
        finally:
            for proc in workers:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
    for log in sorted(workdir.glob("server-*.log")):
        lines = log.read_text(errors="replace").splitlines()
        if lines:
            print(f"--- {log.name} (last lines)", *lines[-15:], sep="\n", file=sys.stderr)
    return _report(args, connected, sent, results, broadcast_cpu, chat_started)


def _report(
    args: argparse.Namespace,
    connected: int,
    sent: dict[str, float],
    results: list[dict[str, Any]],
    server_cpu_s: float,
    chat_started: float,
) -> int:
    latencies: list[float] = []
    by_server: dict[int, list[float]] = {}
    by_broadcast: dict[str, list[float]] = {}
    delivered = 0
    for result in results:
        for event_id, arrivals in result["cards"].items():
            if event_id not in sent:
                continue
            for server, at in arrivals:
                ms = (at - sent[event_id]) * 1000
                latencies.append(ms)
                by_broadcast.setdefault(event_id, []).append(ms)
                by_server.setdefault(server, []).append(ms)
                delivered += 1
    expected = args.viewers * len(sent)
    chat_total = args.posters * args.burst
    chat_delivered = sum(r["chat_count"] for r in results)
    chat_last = max((r["chat_last"] for r in results), default=chat_started)
    out: dict[str, Any] = {
        "viewers": args.viewers,
        "connected": connected,
        "processes": args.processes,
        "broadcasts": len(sent),
        "broadcast_p50_ms": round(_percentile(latencies, 0.50), 1),
        "broadcast_p99_ms": round(_percentile(latencies, 0.99), 1),
        "delivered": delivered,
        "lost": expected - delivered,
        "server_us_per_socket_message": round(server_cpu_s * 1e6 / max(1, delivered), 2),
        "chat_msgs_per_s": round(chat_total / max(1e-3, chat_last - chat_started), 1),
        "chat_delivered": chat_delivered,
        "chat_expected": chat_total * args.viewers,
        "closed_by_server": sum(r["closed_early"] for r in results),
        "first_close_after_start_s": [
            round(r["first_close"] - chat_started, 1) for r in results if r["first_close"]
        ],
    }
    if len(by_server) > 1:
        out["p99_ms_by_process"] = {
            str(k): round(_percentile(v, 0.99), 1) for k, v in sorted(by_server.items())
        }
        out["cross_process_added_p99_ms"] = round(
            _percentile(by_server.get(1, []), 0.99) - _percentile(by_server.get(0, []), 0.99), 1
        )
    out["p99_ms_by_broadcast"] = [
        round(_percentile(by_broadcast.get(event_id, []), 0.99), 1) for event_id in sent
    ]
    out["broadcast_mean_ms"] = round(statistics.fmean(latencies), 1) if latencies else 0.0
    print(json.dumps(out))
    return 0 if out["lost"] == 0 else 1
