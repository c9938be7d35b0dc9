"""Pins the one HTTP error shape as the app answers it (the websocket's:
tests/live/test_error_shape.py)."""

from __future__ import annotations

import httpx


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
