"""PATCH /api/shows/{show}: the host's title and schedule, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from core.roles import Role
from tests.conftest import admin_headers
from web.parts import parts


async def _show(client: httpx.AsyncClient) -> dict[str, Any]:
    resp = await client.post("/api/shows", json={"title": "Autumn"}, headers=admin_headers())
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _host(app: Starlette, show_id: str) -> dict[str, str]:
    token = parts(app).tokens.issue(Role.HOST, name="Hana", show_id=show_id)
    return {"Authorization": f"Bearer {token}"}


async def test_host_sets_title_and_schedule(client: httpx.AsyncClient, app: Starlette) -> None:
    show = await _show(client)
    host = _host(app, show["id"])
    resp = await client.patch(
        f"/api/shows/{show['id']}",
        json={"title": "T" * 200, "scheduled_at": "2030-05-01T18:30:00+02:00"},
        headers=host,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["title"] == "T" * 200
    assert resp.json()["scheduled_at"] == "2030-05-01T16:30:00+00:00"
    got = (await client.get(f"/api/shows/{show['id']}")).json()
    assert (got["title"], got["scheduled_at"]) == ("T" * 200, "2030-05-01T16:30:00+00:00")

    # only what is given changes; null clears the schedule
    resp = await client.patch(f"/api/shows/{show['id']}", json={"title": "Winter"}, headers=host)
    assert resp.json()["scheduled_at"] == "2030-05-01T16:30:00+00:00"
    resp = await client.patch(f"/api/shows/{show['id']}", json={"scheduled_at": None}, headers=host)
    assert resp.status_code == 200, resp.text
    assert (resp.json()["title"], resp.json()["scheduled_at"]) == ("Winter", None)
    # the latest time the column and the validator agree on
    resp = await client.patch(
        f"/api/shows/{show['id']}", json={"scheduled_at": "9998-12-31T23:59:59Z"}, headers=host
    )
    assert resp.status_code == 200, resp.text
    got = (await client.get(f"/api/shows/{show['id']}")).json()
    assert got["scheduled_at"] == "9998-12-31T23:59:59+00:00"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "T" * 201}, "title"),
        ({"title": None}, "title"),
        ({"title": 5}, "title"),
        ({"scheduled_at": "2030-05-01T18:30:00"}, "scheduled_at"),  # no offset
        ({"scheduled_at": "tomorrow"}, "scheduled_at"),
        ({"scheduled_at": "1999-12-31T23:59:59Z"}, "scheduled_at"),
        ({"scheduled_at": "9999-12-31T23:00:00-05:00"}, "scheduled_at"),  # past year 9999 in UTC
        ({"status": "live"}, "status"),
    ],
)
async def test_bad_edits_are_refused_and_change_nothing(
    client: httpx.AsyncClient, app: Starlette, body: dict[str, Any], field: str
) -> None:
    show = await _show(client)
    resp = await client.patch(f"/api/shows/{show['id']}", json=body, headers=_host(app, show["id"]))
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["fields"], error
    got = (await client.get(f"/api/shows/{show['id']}")).json()
    assert (got["title"], got["scheduled_at"], got["status"]) == ("Autumn", None, "scheduled")


async def test_an_ended_show_keeps_its_title(client: httpx.AsyncClient, app: Starlette) -> None:
    show = await _show(client)
    host = _host(app, show["id"])
    for step in ("start", "end"):
        assert (await client.post(f"/api/shows/{show['id']}/{step}", headers=host)).is_success
    resp = await client.patch(f"/api/shows/{show['id']}", json={"title": "Later"}, headers=host)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "show_ended"
    assert (await client.get(f"/api/shows/{show['id']}")).json()["title"] == "Autumn"


async def test_unknown_show(client: httpx.AsyncClient) -> None:
    resp = await client.patch("/api/shows/shw_nope", json={"title": "x"}, headers=admin_headers())
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "show_not_found"
