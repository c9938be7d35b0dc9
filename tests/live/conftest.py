"""A real live server on 127.0.0.1 (uvicorn in the test's loop) and a websocket client."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from checkout import catalog
from checkout.show_state import ShowStatus
from config import Settings
from core.roles import Role
from web.app import create_app
from web.parts import parts

WAIT_S = 5.0


@dataclass
class Seeded:
    show_id: str
    product_ids: list[str]
    variant_ids: list[str]


async def seed_show(app: Starlette, products: int = 4, stock: int = 5) -> Seeded:
    async with parts(app).resources.sessions.begin() as session:
        show = await catalog.create_show(session, "Live test")
        product_ids, variant_ids = [], []
        for n in range(products):
            spec = catalog.ProductSpec(
                name=f"Product {n}",
                image_url=f"https://img.example/{n}.png",
                variants=[catalog.VariantSpec(f"SKU-{show.id}-{n}", 1000 + n, "EUR", stock)],
            )
            product = await catalog.add_product(session, show.id, spec)
            product_ids.append(product.id)
            variant_ids.append(product.variants[0].id)
        await catalog.change_status(session, show.id, ShowStatus.LIVE)
        return Seeded(show.id, product_ids, variant_ids)


@dataclass
class LiveServer:
    app: Starlette
    url: str

    def token(self, role: Role, name: str, show_id: str | None = None) -> str:
        token: str = parts(self.app).tokens.issue(
            role, name=name, show_id=show_id if role is not Role.VIEWER else None
        )
        return token


async def start_server(app: Starlette) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="on",
        log_config=None,
        ws="websockets-sansio",
        timeout_graceful_shutdown=3,  # as `liveshop serve`: a stuck socket never hangs shutdown
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "uvicorn did not start"
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port


@pytest.fixture
async def live(settings: Settings, redis_client: Any) -> AsyncIterator[LiveServer]:
    app = create_app(settings)
    server, task, port = await start_server(app)
    try:
        yield LiveServer(app, f"ws://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=10)
        if not done:  # say where shutdown is stuck before failing
            for stuck in asyncio.all_tasks():
                stuck.print_stack(limit=8)
        await asyncio.wait_for(task, 5)


class Client:
    """A participant: sends requests with refs and collects what the server sends."""

    _refs = itertools.count(1)

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []  # not yet taken by expect/request
        self.log: list[dict[str, Any]] = []  # everything received

    @classmethod
    async def open(
        cls,
        base: str,
        show_id: str,
        token: str | None = None,
        last_id: str | None = None,
        *,
        token_in_query: bool = False,
    ) -> Client:
        """Join as the pages do (the token as a ``token.<token>`` subprotocol), or as an
        old client (``?token=``) with ``token_in_query``."""
        query = []
        protocols = [Subprotocol("liveshop")]
        if token and token_in_query:
            query.append(f"token={token}")
        elif token:
            protocols.append(Subprotocol(f"token.{token}"))
        if last_id:
            query.append(f"last_id={last_id}")
        url = f"{base}/live/{show_id}" + ("?" + "&".join(query) if query else "")
        opening = connect(url, subprotocols=protocols, open_timeout=WAIT_S)
        ws = await asyncio.wait_for(opening, WAIT_S)
        return cls(ws)

    async def next(self, wait_s: float = WAIT_S) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), wait_s)
        message: dict[str, Any] = json.loads(raw)
        self.seen.append(message)
        self.log.append(message)
        return message

    async def expect(self, kind: str, wait_s: float = WAIT_S, **match: Any) -> dict[str, Any]:
        """The next message of ``kind`` (looking inside batches) matching ``match``."""
        for message in self.seen:
            found = _find(message, kind, match)
            if found is not None:
                self.seen.remove(message)
                return found
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {kind} {match} within {wait_s}s; saw {self.seen}")
            message = await self.next(left)
            found = _find(message, kind, match)
            if found is not None:
                self.seen.remove(message)
                return found

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        ref = f"r{next(self._refs)}"
        await self.ws.send(json.dumps({"type": kind, "ref": ref, **fields}))
        for message in self.seen:
            if message.get("ref") == ref and message["type"] in ("ok", "error"):
                self.seen.remove(message)
                return message
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no reply to {kind}")
            message = await self.next(left)
            if message.get("ref") == ref and message["type"] in ("ok", "error"):
                self.seen.remove(message)
                return message

    async def close_code(self, wait_s: float = WAIT_S) -> int | None:
        """Read on until the server closes the socket: its close code (None: still open
        after ``wait_s``, or closed without a code)."""
        try:
            async with asyncio.timeout(wait_s):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None

    async def close(self) -> None:
        await self.ws.close()


def _find(message: dict[str, Any], kind: str, match: dict[str, Any]) -> dict[str, Any] | None:
    candidates = message["events"] if message["type"] == "batch" else [message]
    for event in candidates:
        if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
            return dict(event)
    return None


def events_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        out.extend(message["events"] if message["type"] == "batch" else [message])
    return out
