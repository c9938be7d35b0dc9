"""The app wires live: the event sink for checkout, one service, the show hooks."""

from __future__ import annotations

import json

import httpx
from starlette.applications import Starlette

from core.roles import Role
from live.checkout_events import LiveEventSink
from live.event_log import EventLog
from live.service import LiveService
from tests.conftest import admin_headers
from web.parts import parts


async def test_app_wires_live(app: Starlette, client: httpx.AsyncClient) -> None:
    assert isinstance(parts(app).checkout.events, LiveEventSink)  # checkout publishes to live
    assert isinstance(parts(app).live, LiveService)
    resp = await client.post("/api/shows", json={"title": "Wired"}, headers=admin_headers())
    show_id = resp.json()["id"]
    host = parts(app).tokens.issue(Role.HOST, name="H", show_id=show_id)
    resp = await client.post(
        f"/api/shows/{show_id}/start", headers={"Authorization": f"Bearer {host}"}
    )
    assert resp.status_code == 200, resp.text
    entries = await EventLog(parts(app).resources.redis, show_id).after("0-0")
    assert [json.loads(e.event)["type"] for e in entries] == ["show_status"]
    assert json.loads(entries[0].event)["status"] == "live"
