"""No credential in the server's log: a whole run of ``liveshop serve``, grepped.

Host, moderator and viewer tokens join the live channel both ways a client may send one
(the ``Sec-WebSocket-Protocol`` value the pages use, and the old ``?token=`` query), call
the HTTP API with them (a Bearer header, and a token pasted into a query string), and the
whole log of the run, at debug level, must hold none of the tokens the run issued.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from config import Settings
from tests.conftest import admin_headers
from tests.web.serving import Served, liveshop_serve
from web.log_redaction import RedactSecrets, redact
from web.observability import JsonFormatter


async def _show(http: httpx.AsyncClient) -> str:
    show = (await http.post("/api/shows", json={"title": "Logs"}, headers=admin_headers())).json()
    product = {
        "name": "Mug",
        "variants": [{"sku": "MUG-1", "price": {"amount": 900, "currency": "EUR"}, "stock": 3}],
    }
    added = await http.post(
        f"/api/shows/{show['id']}/products", json=product, headers=admin_headers()
    )
    assert added.status_code == 201
    assert (
        await http.post(f"/api/shows/{show['id']}/start", headers=admin_headers())
    ).status_code == 200
    return str(show["id"])


async def _tokens(http: httpx.AsyncClient, show_id: str) -> dict[str, str]:
    issued: dict[str, str] = {}
    for role in ("host", "moderator", "viewer"):
        body: dict[str, Any] = {"role": role, "name": f"{role} one"}
        if role != "viewer":
            body["show_id"] = show_id
        reply = await http.post("/api/tokens", json=body, headers=admin_headers())
        issued[role] = reply.json()["token"]
    issued["guest"] = (await http.post("/api/viewers", json={"name": "Guest"})).json()["token"]
    renewed = await http.post(
        "/api/tokens/renew", headers={"Authorization": f"Bearer {issued['host']}"}
    )
    issued["renewed host"] = renewed.json()["token"]
    return issued


async def _join(served: Served, show_id: str, token: str, *, in_query: bool) -> str:
    """Join with ``token``, chat once, leave: the role the server saw."""
    url = f"{served.ws}/live/{show_id}"
    protocols = [Subprotocol("liveshop")]
    if in_query:
        url += f"?token={token}"
    else:
        protocols.append(Subprotocol(f"token.{token}"))
    async with connect(url, subprotocols=protocols, open_timeout=5) as ws:
        hello = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "chat", "ref": "c1", "text": "hello"}))
        while (reply := json.loads(await ws.recv())).get("ref") != "c1":
            pass
        assert reply["type"] == "ok", reply
        return str(hello["role"])


async def test_no_token_of_the_run_reaches_the_log(
    settings: Settings, tmp_path: Path, redis_client: aioredis.Redis
) -> None:
    with liveshop_serve(settings, tmp_path, LIVESHOP_LOG_LEVEL="debug") as served:
        async with httpx.AsyncClient(base_url=served.http, timeout=10) as http:
            show_id = await _show(http)
            tokens = await _tokens(http, show_id)
            for name, token in tokens.items():
                role = name.split()[-1].replace("guest", "viewer")
                for in_query in (False, True):
                    assert await _join(served, show_id, token, in_query=in_query) == role
                # a token pasted into any URL
                assert (await http.get(f"/api/shows/{show_id}?token={token}")).status_code == 200
    log = served.log()
    assert log.count(f"/live/{show_id}") >= 2 * len(tokens)  # the joins were logged
    leaked = [name for name, token in tokens.items() if token in log]
    assert leaked == []
    # nor any part of one: the signature is what makes a token
    assert [n for n, t in tokens.items() if t.rsplit(".", 1)[1] in log] == []


def test_an_exception_or_extra_holding_a_token_is_redacted() -> None:
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "bad %s", (token,), None)
    try:
        raise ValueError(f"cannot use {token}")
    except ValueError:
        record.exc_info = sys.exc_info()
    record.header = f"Bearer {token}"
    assert RedactSecrets().filter(record)
    line = JsonFormatter().format(record)
    assert token not in line and "signature" not in line
    assert json.loads(line)["msg"] == "bad [redacted]"
    assert redact("GET /x?a=1&token=forged&b=2") == "GET /x?a=1&token=[redacted]&b=2"
    assert redact("key lsk_Ab-9_x refused") == "key [redacted] refused"
