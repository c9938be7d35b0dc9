"""JSON bodies at the edge: nesting past the limit is a coded 400 on every JSON route, and
a client that hangs up mid-body is one log line, not a traceback."""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest
from starlette.applications import Starlette

from config import Settings
from core.json_depth import MAX_DEPTH
from tests.conftest import admin_headers
from tests.live.conftest import start_server
from web.app import create_app


def _nested(depth: int) -> bytes:
    return b'{"name":' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("method", "path", "admin"),
    [
        ("POST", "/api/viewers", False),
        ("POST", "/api/shows", True),
        ("POST", "/api/tokens", True),
    ],
)
async def test_deep_json_is_a_coded_400(
    client: httpx.AsyncClient, method: str, path: str, admin: bool
) -> None:
    headers = {"content-type": "application/json", **(admin_headers() if admin else {})}
    resp = await client.request(method, path, content=_nested(3000), headers=headers)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "json_too_deep"
    resp = await client.request(method, path, content=_nested(MAX_DEPTH - 1), headers=headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_input"


def _hang_up_mid_body(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /api/viewers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            b'{"name": "'
        )


async def test_a_client_that_hangs_up_mid_body_is_one_line(
    settings: Settings, redis_client: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app: Starlette = create_app(settings)
    server, task, port = await start_server(app)
    try:
        for _ in range(3):
            await asyncio.to_thread(_hang_up_mid_body, port)
        for _ in range(100):
            said = [r for r in caplog.records if r.getMessage() == "client disconnected mid-body"]
            if len(said) == 3:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # (anything else it would log)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]
    assert len(said) == 3
    assert {r.levelno for r in said} == {logging.INFO}


def _hang_up_mid_offer(port: int, show_id: str) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"POST /whep/{show_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
            + b"Content-Type: application/sdp\r\nContent-Length: 4000\r\n\r\nv=0\r\n"
        )


async def test_a_viewer_that_hangs_up_mid_offer_is_one_line(
    settings: Settings, redis_client: object, caplog: pytest.LogCaptureFixture
) -> None:
    # signaling reads its offers itself: the app answers the hang-up for every route.
    caplog.set_level(logging.INFO)
    app: Starlette = create_app(settings)
    server, task, port = await start_server(app)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            resp = await http.post("/api/shows", json={"title": "Hang"}, headers=admin_headers())
            show_id = resp.json()["id"]
        await asyncio.to_thread(_hang_up_mid_offer, port, show_id)
        for _ in range(100):
            said = [r for r in caplog.records if r.getMessage() == "client disconnected mid-body"]
            if said:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert bad == [], [r.getMessage() for r in bad]
    assert [r.levelno for r in said] == [logging.INFO]
