"""The three pages (plain ES modules and CSS, no build step) and their static files.

Tokens travel in the URL fragment (``#token=...``), which browsers never send to a server,
so they stay out of access logs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from config import Settings
from web.parts import parts

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


def security_headers(settings: Settings) -> dict[str, str]:
    """The pages' headers. With Stripe on, its script, frames and API are allowed too (the
    origins of ``LIVESHOP_STRIPE_JS_URL`` and ``LIVESHOP_STRIPE_API_BASE``; Stripe.js
    frames 3-D Secure from its own origin and hooks.stripe.com)."""
    if settings.payment_provider != "stripe":
        return SECURITY_HEADERS
    js, api = _origin(settings.stripe_js_url), _origin(settings.stripe_api_base)
    frames = f"{js} https://hooks.stripe.com" if js == "https://js.stripe.com" else js
    policy = (
        "default-src 'self'; img-src 'self' https: data:; media-src 'self' blob:; "
        f"connect-src 'self' ws: wss: {api} {js}; style-src 'self'; script-src 'self' {js}; "
        f"frame-src {frames}; object-src 'none'"
    )
    return {**SECURITY_HEADERS, "Content-Security-Policy": policy}


def _origin(url: str) -> str:
    parts_ = urlsplit(url)
    return f"{parts_.scheme}://{parts_.netloc}"


def _serve(filename: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        headers = security_headers(parts(request.app).settings)
        return FileResponse(STATIC / filename, headers=headers)

    return endpoint


async def favicon(request: Request) -> Response:
    return FileResponse(STATIC / "img" / "favicon.svg", media_type="image/svg+xml")


def routes() -> list[BaseRoute]:
    pages: list[BaseRoute] = [
        Route(f"/{path}/{{show_id}}", _serve(filename), methods=["GET"])
        for path, filename in PAGES.items()
    ]
    # The front door: the live and upcoming shows (``/`` and ``/watch``).
    home = [Route(path, _serve("home.html"), methods=["GET"]) for path in ("/", "/watch")]
    return [
        *pages,
        *home,
        Route("/favicon.ico", favicon, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
