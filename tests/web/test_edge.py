"""The edge of a real ``liveshop serve`` (web/edge.py), driven with raw sockets on
loopback: idle and slow connections are closed, an oversized head is refused, and normal
requests and open websockets are left alone. Every wait is bounded."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from pathlib import Path

import redis.asyncio as aioredis
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.asyncio.client import connect

from config import Settings
from tests.web.serving import Served, liveshop_serve
from web.edge import EdgeHttpProtocol

TIMEOUT_S = 1.0  # LIVESHOP_REQUEST_READ_TIMEOUT_S of the server under test
CLOSED_WITHIN_S = TIMEOUT_S + 2.0


async def _open(served: Served) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", served.port), 5)


async def _answer(reader: asyncio.StreamReader, within_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    start = time.monotonic()
    data = await asyncio.wait_for(reader.read(), within_s)  # (read() ends at EOF)
    return data, time.monotonic() - start


def _status_and_code(answer: bytes) -> tuple[int, str | None]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    code = json.loads(body).get("error", {}).get("code") if body.startswith(b"{") else None
    return status, code


async def _trickle(writer: asyncio.StreamWriter, chunks: list[bytes], every_s: float) -> None:
    """Send one chunk every ``every_s`` until the server hangs up."""
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(every_s)
    except (ConnectionError, OSError):
        return


async def _closes_idle_and_slow(served: Served) -> None:
    idle = [await _open(served) for _ in range(5)]
    for reader, _ in idle:  # (sent nothing at all)
        answer, took = await _answer(reader, CLOSED_WITHIN_S)
        assert _status_and_code(answer) == (408, "request_timeout") and took <= CLOSED_WITHIN_S
    reader, writer = await _open(served)  # one byte of a header at a time
    head = [b"GET /healthz HTTP/1.1\r\nHost: x\r\n"] + [b"X"] * 100
    trickle = asyncio.create_task(_trickle(writer, head, 0.1))
    answer, _ = await _answer(reader, CLOSED_WITHIN_S)
    assert _status_and_code(answer) == (408, "request_timeout")
    await trickle
    reader, writer = await _open(served)  # a whole head, then one byte of body at a time
    body = [b"POST /api/viewers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"]
    body += [b"Content-Length: 100\r\n\r\n"] + [b" "] * 100
    trickle = asyncio.create_task(_trickle(writer, body, 0.1))
    answer, took = await _answer(reader, CLOSED_WITHIN_S)
    assert not answer.startswith(b"HTTP/1.1 2")  # (closed: no order of the app's went out)
    await trickle
    for _, writer in idle:
        writer.close()


async def _refuses_a_large_head(served: Served) -> None:
    for size, status in ((12_000, 200), (20_000, 431), (1024 * 1024, 431)):
        reader, writer = await _open(served)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n")
        writer.write(b"X-Big: " + b"a" * size + b"\r\n\r\n")
        with contextlib.suppress(ConnectionError):  # (it may hang up before the whole MiB)
            await writer.drain()
        answer, _ = await _answer(reader, 5)
        got = _status_and_code(answer)
        assert got == (status, "header_too_large" if status == 431 else None), size
        writer.close()


async def _leaves_normal_traffic_alone(served: Served) -> None:
    reader, writer = await _open(served)
    for _ in range(2):  # keep-alive: two requests, a pause under the deadline between
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        await asyncio.wait_for(reader.readexactly(length), 5)
        await asyncio.sleep(TIMEOUT_S / 2)
    writer.close()
    async with connect(f"{served.ws}/live/no-such-show", open_timeout=5) as ws:
        await asyncio.sleep(TIMEOUT_S + 0.5)  # an open websocket is not timed
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "error"


async def test_the_edge_of_a_real_server(
    settings: Settings, tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    with liveshop_serve(
        settings, tmp_path, LIVESHOP_REQUEST_READ_TIMEOUT_S=str(TIMEOUT_S)
    ) as served:
        await _closes_idle_and_slow(served)
        await _refuses_a_large_head(served)
        await _leaves_normal_traffic_alone(served)
    # (the late body's ClientDisconnect is logged as what it is by web/http.py's own fix)
    tracebacks = [line for line in served.log().splitlines() if "Traceback" in line]
    assert [line for line in tracebacks if "ClientDisconnect" not in line] == []


def test_the_hooked_methods_are_uvicorns() -> None:
    """EdgeHttpProtocol overrides these; a uvicorn that renamed one would bypass a guard."""
    for name in (
        "connection_made",
        "connection_lost",
        "data_received",
        "on_message_begin",
        "on_message_complete",
        "handle_websocket_upgrade",
    ):
        assert name in vars(HttpToolsProtocol) and name in vars(EdgeHttpProtocol), name
    source = inspect.getsource(HttpToolsProtocol)
    for used in ("self.loop", "self.transport", "self.server_state.default_headers"):
        assert used in source, used
    assert "self.handle_websocket_upgrade()" in source  # (where the deadline stops)
