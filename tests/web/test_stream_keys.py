"""Stream keys for OBS: made, listed and revoked by the show's host; WHIP publishes with one
(real aiortc publisher and viewer), and refuses a revoked key, another show's key, and an
unknown one; a session opened with a key ends when the key is revoked."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from starlette.applications import Starlette

from benches.synthetic import PatternTrack
from core.db import utcnow
from core.roles import Role
from tests.conftest import admin_headers, make_settings
from tests.live.conftest import seed_show
from tests.signaling.support import offer_whip, play, publish
from web.app import create_app
from web.parts import parts
from web.stream_keys import LABEL_MAX_CHARS, MAX_ACTIVE_PER_SHOW, StreamKey


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, db_url: str, redis_url: str
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    settings = make_settings(tmp_path, db_url, redis_url, ice_host_addresses=["127.0.0.1"])
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            yield app, http


def _host(app: Starlette, show: str) -> dict[str, str]:
    return _bearer(parts(app).tokens.issue(Role.HOST, name="Hana", show_id=show))


async def _make(http: httpx.AsyncClient, show: str, headers: dict[str, str], **body: Any) -> Any:
    resp = await http.post(f"/api/shows/{show}/stream-keys", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_a_host_makes_lists_and_revokes_keys(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    show = (await seed_show(app, products=1)).show_id
    host = _host(app, show)
    made = await _make(client, show, host, label="  Studio OBS  ")
    key = made["key"]
    assert key.startswith("lsk_") and len(key) >= 4 + 43
    assert made["label"] == "Studio OBS" and made["revoked_at"] is None
    assert made["whip_url"] == f"http://testserver/whip/{show}"
    second = await _make(client, show, admin_headers())  # the admin may too; label "OBS"
    assert second["label"] == "OBS" and second["key"] != key
    # the database keeps the hash only, never the key
    async with parts(app).resources.sessions() as session:
        rows = list(await session.scalars(select(StreamKey).where(StreamKey.show_id == show)))
    assert {r.key_hash for r in rows} == {
        hashlib.sha256(k.encode()).hexdigest() for k in (key, second["key"])
    }
    assert {r.created_by for r in rows} == {
        "admin",
        parts(app).tokens.verify(host["Authorization"][7:]).user_id,
    }
    listed = await client.get(f"/api/shows/{show}/stream-keys", headers=host)
    assert listed.status_code == 200
    body = listed.json()
    assert [k["id"] for k in body["stream_keys"]] == [second["id"], made["id"]]
    assert "key" not in listed.text.replace('"stream_keys"', "")  # no secret in the list
    assert key not in listed.text and body["limit"] == MAX_ACTIVE_PER_SHOW
    gone = await client.delete(f"/api/shows/{show}/stream-keys/{made['id']}", headers=host)
    assert gone.status_code == 204
    again = await client.delete(f"/api/shows/{show}/stream-keys/{made['id']}", headers=host)
    assert again.status_code == 204  # revoking twice changes nothing
    listed = (await client.get(f"/api/shows/{show}/stream-keys", headers=host)).json()
    revoked = {k["id"]: k["revoked_at"] for k in listed["stream_keys"]}
    assert revoked[made["id"]] is not None and revoked[second["id"]] is None
    missing = await client.delete(f"/api/shows/{show}/stream-keys/sk_nope", headers=host)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "stream_key_not_found")


async def test_who_may_touch_a_shows_keys(app: Starlette, client: httpx.AsyncClient) -> None:
    show = (await seed_show(app, products=1)).show_id
    other = (await seed_show(app, products=1)).show_id
    tokens = parts(app).tokens
    made = await _make(client, show, _host(app, show))
    refused = {
        "viewer": (_bearer(tokens.issue(Role.VIEWER, name="v")), 403, "forbidden_role"),
        "moderator": (
            _bearer(tokens.issue(Role.MODERATOR, name="m", show_id=show)),
            403,
            "forbidden_role",
        ),
        "other host": (_host(app, other), 403, "forbidden_show"),
        "none": ({}, 401, "auth_missing"),
        "a stream key": (_bearer(made["key"]), 401, "auth_invalid"),
    }
    base = f"/api/shows/{show}/stream-keys"
    for name, (headers, status, code) in refused.items():
        for method, path in (("POST", base), ("GET", base), ("DELETE", f"{base}/{made['id']}")):
            body: dict[str, Any] | None = {} if method == "POST" else None
            resp = await client.request(method, path, json=body, headers=headers)
            assert (name, method, resp.status_code, resp.json()["error"]["code"]) == (
                name,
                method,
                status,
                code,
            )
    # another show's host may not revoke this show's key through their own show
    cross = await client.delete(
        f"/api/shows/{other}/stream-keys/{made['id']}", headers=_host(app, other)
    )
    assert cross.status_code == 404
    listed = (await client.get(base, headers=_host(app, show))).json()["stream_keys"]
    assert [k["revoked_at"] for k in listed] == [None]
    unknown = await client.post("/api/shows/shw_nope/stream-keys", json={}, headers=admin_headers())
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "show_not_found")


async def test_the_label_and_the_count_have_limits(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    show = (await seed_show(app, products=1)).show_id
    host = _host(app, show)
    base = f"/api/shows/{show}/stream-keys"
    for body in (
        {"label": ""},
        {"label": "   "},
        {"label": "x" * (LABEL_MAX_CHARS + 1)},
        {"label": 5},
        {"other": "x"},
    ):
        resp = await client.post(base, json=body, headers=host)
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_input"), body
    # the longest label fits its column (PostgreSQL refuses what does not)
    await _make(client, show, host, label="é" * LABEL_MAX_CHARS)
    for _ in range(MAX_ACTIVE_PER_SHOW - 1):
        last = await _make(client, show, host)
    full = await client.post(base, json={}, headers=host)
    assert (full.status_code, full.json()["error"]["code"]) == (409, "stream_key_limit")
    assert len((await client.get(base, headers=host)).json()["stream_keys"]) == MAX_ACTIVE_PER_SHOW
    # a revoked key makes room for another
    assert (await client.delete(f"{base}/{last['id']}", headers=host)).status_code == 204
    await _make(client, show, host)


async def test_whip_publishes_with_a_key_and_refuses_it_once_revoked(
    tmp_path: Path, db_url: str, redis_url: str
) -> None:
    async with serving(tmp_path, db_url, redis_url) as (app, http):
        show = (await seed_show(app, products=1)).show_id
        other = (await seed_show(app, products=1)).show_id
        host = _host(app, show)
        made = await _make(http, show, host, label="OBS")
        mine_other = await _make(http, other, _host(app, other))
        # another show's key, an unknown key, and a host token of another show are refused
        resp = await offer_whip(http, mine_other["key"], show=show)
        assert (resp.status_code, resp.json()["error"]["code"]) == (403, "forbidden")
        resp = await offer_whip(http, "lsk_" + "A" * 43, show=show)
        assert (resp.status_code, resp.json()["error"]["code"]) == (401, "unauthorized")
        # the key publishes, and a viewer gets the frames
        publisher = await publish(http, PatternTrack(), show=show, token=made["key"])
        viewer = await play(http, show=show, token=None)
        try:
            await viewer.wait_frames(10)
            assert parts(app).video.stats()["publishers"] == 1
            listed = (await http.get(f"/api/shows/{show}/stream-keys", headers=host)).json()
            assert listed["stream_keys"][0]["last_used_at"] is not None
            # the key is its own publisher: the host's browser meanwhile gets a conflict
            clash = await offer_whip(http, host["Authorization"][7:], show=show)
            assert (clash.status_code, clash.json()["error"]["code"]) == (
                409,
                "publisher_conflict",
            )
            # revoked: the running session ends at once, and the key is refused after
            gone = await http.delete(f"/api/shows/{show}/stream-keys/{made['id']}", headers=host)
            assert gone.status_code == 204
            assert parts(app).video.stats()["publishers"] == 0
            resp = await offer_whip(http, made["key"], show=show)
            assert (resp.status_code, resp.json()["error"]["code"]) == (401, "key_revoked")
            # the host's own token still publishes
            again = await publish(http, PatternTrack(), show=show, token=host["Authorization"][7:])
            await again.close()
        finally:
            await viewer.close()
            await publisher.close()


async def test_a_key_revoked_elsewhere_ends_its_session_at_the_next_check(
    tmp_path: Path, db_url: str, redis_url: str
) -> None:
    """Revoked through another process (or straight in SQL): the periodic check ends it."""
    async with serving(tmp_path, db_url, redis_url) as (app, http):
        parts(app).video.publisher_recheck_s = 0.2
        show = (await seed_show(app, products=1)).show_id
        made = await _make(http, show, _host(app, show))
        publisher = await publish(http, PatternTrack(), show=show, token=made["key"])
        try:
            assert parts(app).video.stats()["publishers"] == 1
            async with parts(app).resources.sessions.begin() as session:
                row = await session.get(StreamKey, made["id"])
                assert row is not None
                row.revoked_at = utcnow()
            async with asyncio.timeout(5):
                while parts(app).video.stats()["publishers"]:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        finally:
            await publisher.close()
