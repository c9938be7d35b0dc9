from __future__ import annotations

import httpx
from starlette.applications import Starlette

from tests.conftest import admin_headers
from web.parts import parts


async def test_healthz_readyz_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    resp = await client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    await client.post("/api/shows", json={"title": "m"}, headers=admin_headers())
    text = (await client.get("/metrics")).text
    assert 'liveshop_http_requests_total{method="POST",route="/api/shows",status="201"} 1.0' in text
    assert 'route="/healthz"' in text
    for gauge in (
        "liveshop_live_sockets 0.0",
        "liveshop_video_peer_connections 0.0",
        "liveshop_video_paced_bytes_queued 0.0",
        "liveshop_video_nacks_unserved_total 0.0",
        "liveshop_video_reprimes_total 0.0",
        "liveshop_video_stalls_total 0.0",
    ):
        assert f"\n{gauge}\n" in text


async def test_readyz_reports_a_dead_redis(client: httpx.AsyncClient, app: Starlette) -> None:
    await parts(app).resources.redis.aclose()
    parts(app).resources.redis = parts(app).resources.redis.from_url("redis://127.0.0.1:1/0")
    resp = await client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"]["database"] == "ok"
    assert resp.json()["checks"]["redis"].startswith("down")
