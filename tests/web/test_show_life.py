"""The edges of a show's life over HTTP, on both databases and real Redis: the front door
and its public list, the end of a show (carts released, buying and video refused) and a
banned viewer's video refused."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import update
from starlette.applications import Starlette

from checkout.models import Show
from core.db import utcnow
from core.roles import Role
from tests.conftest import admin_headers
from web.parts import parts

PRODUCT = {
    "name": "Tote",
    "variants": [{"sku": "TOTE-1", "price": {"amount": 2500, "currency": "EUR"}, "stock": 5}],
}
SDP = {"Content-Type": "application/sdp"}


async def _show(client: httpx.AsyncClient, title: str, *, start: bool = True) -> dict[str, Any]:
    show: dict[str, Any] = (
        await client.post("/api/shows", json={"title": title}, headers=admin_headers())
    ).json()
    if start:
        resp = await client.post(f"/api/shows/{show['id']}/start", headers=admin_headers())
        assert resp.status_code == 200, resp.text
    return show


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_public_list_has_live_upcoming_and_lately_ended_shows(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    live = await _show(client, "Live one")
    soon = await _show(client, "Soon", start=False)
    ended = await _show(client, "Ended today")
    old = await _show(client, "Ended long ago")
    for show in (ended, old):
        await client.post(f"/api/shows/{show['id']}/end", headers=admin_headers())
    async with parts(app).resources.sessions.begin() as session:
        await session.execute(
            update(Show).where(Show.id == old["id"]).values(ended_at=utcnow().replace(year=2020))
        )
    issued = await client.post(
        "/api/tokens",
        json={"role": "host", "name": "Hana", "show_id": live["id"]},
        headers=admin_headers(),
    )
    assert issued.status_code == 201

    public = (await client.get("/api/shows")).json()["shows"]
    by_title = {s["title"]: s for s in public}
    assert set(by_title) == {"Live one", "Soon", "Ended today"}
    assert by_title["Live one"]["host_name"] == "Hana"  # the first host token made her host
    assert by_title["Soon"]["host_name"] is None
    assert by_title["Live one"]["status"] == "live" and by_title["Live one"]["started_at"]
    assert set(by_title["Soon"]) == {
        "id", "title", "status", "scheduled_at", "started_at", "ended_at", "host_name",
    }  # fmt: skip
    admin = (await client.get("/api/shows", headers=admin_headers())).json()["shows"]
    assert {s["title"] for s in admin} == {"Live one", "Soon", "Ended today", "Ended long ago"}
    # a second host token does not take the show over
    await client.post(
        "/api/tokens",
        json={"role": "host", "name": "Other", "show_id": live["id"]},
        headers=admin_headers(),
    )
    again = {s["title"]: s for s in (await client.get("/api/shows")).json()["shows"]}
    assert again["Live one"]["host_name"] == "Hana"
    assert soon["id"] in {s["id"] for s in public}


async def test_the_front_door_and_the_favicon(client: httpx.AsyncClient) -> None:
    for path in ("/", "/watch"):
        resp = await client.get(path)
        assert resp.status_code == 200
        assert '<script type="module" src="/static/home.js">' in resp.text
        assert "script-src 'self'" in resp.headers["content-security-policy"]
    icon = await client.get("/favicon.ico")
    assert (icon.status_code, icon.headers["content-type"]) == (200, "image/svg+xml")
    assert icon.text.startswith("<svg")


async def test_the_end_of_a_show_releases_carts_and_refuses_buying_and_video(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    show = await _show(client, "Ending")
    product = (
        await client.post(
            f"/api/shows/{show['id']}/products", json=PRODUCT, headers=admin_headers()
        )
    ).json()
    variant = product["variants"][0]["id"]
    viewer = parts(app).tokens.issue(Role.VIEWER, name="Vera")
    cart = f"/api/shows/{show['id']}/cart"
    resp = await client.post(
        cart, json={"variant_id": variant, "quantity": 2}, headers=_bearer(viewer)
    )
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["lines"]) == 1

    resp = await client.post(f"/api/shows/{show['id']}/end", headers=admin_headers())
    assert resp.status_code == 200
    assert (await client.get(cart, headers=_bearer(viewer))).json()["lines"] == []
    deal = (await client.get(f"/api/shows/{show['id']}")).json()
    assert deal["status"] == "ended"
    counts = await parts(app).resources.redis.hgetall(f"inv:{{{variant}}}:stock")
    assert (int(counts["avail"]), int(counts["held"])) == (5, 0)  # the units went back
    again = await client.post(
        cart, json={"variant_id": variant, "quantity": 1}, headers=_bearer(viewer)
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "show_ended")
    buy = await client.post(
        f"/api/shows/{show['id']}/buy",
        json={"variant_id": variant, "quantity": 1, "payment_method": "pm_card_ok"},
        headers={**_bearer(viewer), "Idempotency-Key": "k-end"},
    )
    assert (buy.status_code, buy.json()["error"]["code"]) == (409, "show_ended")
    for path in (f"/whep/{show['id']}", f"/whip/{show['id']}"):
        host = parts(app).tokens.issue(Role.HOST, name="Hana", show_id=show["id"])
        video = await client.post(path, content=b"v=0\r\n", headers={**SDP, **_bearer(host)})
        assert (video.status_code, video.json()["error"]["code"]) == (409, "show_ended"), path


async def test_a_banned_viewer_may_not_play_the_video(
    client: httpx.AsyncClient, app: Starlette
) -> None:
    show = await _show(client, "Moderated")
    banned = parts(app).tokens.issue(Role.VIEWER, name="Spammer")
    other = parts(app).tokens.issue(Role.VIEWER, name="Vera")
    room = await parts(app).live.room(show["id"])
    await room.moderation.ban(parts(app).tokens.verify(banned).user_id)
    refused = await client.post(
        f"/whep/{show['id']}", content=b"v=0\r\n", headers={**SDP, **_bearer(banned)}
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "banned")
    # anyone else gets as far as the offer (this one is not valid SDP)
    allowed = await client.post(
        f"/whep/{show['id']}", content=b"v=0\r\n", headers={**SDP, **_bearer(other)}
    )
    assert allowed.json()["error"]["code"] not in ("banned", "forbidden")
