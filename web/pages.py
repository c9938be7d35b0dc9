"""The three pages (plain ES modules and CSS, no build step) and their static files.

Tokens travel in the URL fragment (``#token=...``), which browsers never send to a server,
so they stay out of access logs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

PAGES = {"watch": "viewer.html", "studio": "studio.html", "moderate": "moderate.html"}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' https: data:; media-src 'self' blob:; "
        "connect-src 'self' ws: wss:; style-src 'self'; script-src 'self'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _serve(filename: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return FileResponse(STATIC / filename, headers=SECURITY_HEADERS)

    return endpoint


def routes() -> list[BaseRoute]:
    pages: list[BaseRoute] = [
        Route(f"/{path}/{{show_id}}", _serve(filename), methods=["GET"])
        for path, filename in PAGES.items()
    ]
    return [*pages, Mount("/static", StaticFiles(directory=STATIC), name="static")]
