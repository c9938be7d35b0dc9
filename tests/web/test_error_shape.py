"""Pins the one error shape, for HTTP and for the websocket."""

from __future__ import annotations

import httpx

from core.errors import ws_error


async def test_http_error_shape(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/api/shows", json={"title": 3}, headers={"Authorization": "Bearer test-admin-secret-123"}
    )
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {
        "error": {
            "code": "invalid_input",
            "message": "some fields are not valid",
            "fields": {"title": "Input should be a valid string"},
        }
    }


def test_websocket_error_shape() -> None:
    assert ws_error("rate_limited", "slow down", ref="c1", fields={"text": "too fast"}) == {
        "type": "error",
        "ref": "c1",
        "code": "rate_limited",
        "message": "slow down",
        "fields": {"text": "too fast"},
    }
