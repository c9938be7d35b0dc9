"""The composition root: one app factory that wires everything from one settings object."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from config import Settings, load_settings
from config.runtime import tune_gc
from core.errors import CodedError, ws_error
from live.checkout_events import LiveEventSink
from live.service import LiveService
from signaling import SignalingConfig, SignalingService
from signaling.placement import VideoPlacement
from web import api, checkout_api, live_ws, pages
from web.auth import TokenIssuer
from web.errors import handle_coded, handle_http, handle_unexpected
from web.event_bus import EventBus
from web.migrate import upgrade
from web.observability import Metrics, MetricsMiddleware, StateCollector
from web.resources import Resources
from web.video_access import VideoAccess

log = logging.getLogger("liveshop.app")


def create_app(
    settings: Settings | None = None, *, migrate: bool = False, server_process: bool = False
) -> Starlette:
    """Build the app. ``migrate`` applies migrations at start (the demo and tests).
    ``server_process``: the app owns its process (``liveshop serve``), so the garbage
    collector is tuned once it has started (``config.runtime.tune_gc``); tests leave it be."""
    settings = settings or load_settings()
    metrics = Metrics()
    tokens = TokenIssuer(settings.signing_key(), settings.token_ttl_s)
    state = State()
    video = SignalingService(
        SignalingConfig(
            ice_servers=list(settings.ice_servers),
            ice_host_addresses=list(settings.ice_host_addresses),
            recording_dir=str(settings.recording_dir) if settings.recording_dir else None,
            turn_username=settings.turn_username,
            turn_credential=settings.turn_credential,
            turn_secret=settings.turn_secret,
            turn_ttl_s=settings.turn_ttl_s,
            reconnect_grace_s=settings.reconnect_grace_s,
        ),
        VideoAccess(tokens, state),
    )
    # Each forward waiting on another process holds a Redis connection: a quarter of the
    # pool at most.
    placement = VideoPlacement(video, max_forwards=max(1, settings.redis_max_connections // 4))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resources = await Resources.open(settings)
        try:
            if migrate:
                await upgrade(resources.engine)
            app.state.resources = resources
            app.state.hooks = EventBus(resources)
            # The EventSink checkout publishes to is live's: it must exist first.
            app.state.events = LiveEventSink(resources.redis)
            # checkout: the inventory gate, sweeper and stock events (web/checkout_api.py)
            app.state.checkout = await checkout_api.open_checkout(app, resources, settings)
            # live: one service per process, with checkout as its port, subscribed to
            # show and catalog changes.
            app.state.live = LiveService(
                resources.redis, resources.sessions, app.state.checkout, error_shape=ws_error
            )
            app.state.hooks.status_listeners.append(app.state.live.show_status_changed)
            app.state.hooks.catalog_listeners.append(app.state.live.catalog_changed)
            app.state.hooks.video_listeners.append(app.state.live.video_state_changed)
            placement.start(resources.redis)
            log.info("liveshop started", extra={"redis": resources.redis_url.split("@")[-1]})
            if server_process:
                tune_gc()
            yield
        finally:
            # Each part is closed even when one before it fails; Redis, the database and
            # the embedded server last, since the others still use them while closing.
            closers = [placement.close, video.close]
            for name in ("live", "checkout"):
                part = getattr(app.state, name, None)
                if part is not None:
                    closers.append(part.close)
            for close in closers:
                try:
                    await close()
                except Exception:
                    log.exception("shutdown step failed", extra={"step": close.__qualname__})
            await resources.close()
            log.info("liveshop stopped")

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            *checkout_api.routes(),  # first: a tap is the hottest request of a drop
            *api.routes(),
            *live_ws.routes(),
            *placement.routes(),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *pages.routes(),
        ],
        middleware=[
            Middleware(live_ws.RawSendMiddleware),
            Middleware(MetricsMiddleware, metrics=metrics),
        ],
        exception_handlers={
            CodedError: handle_coded,
            HTTPException: handle_http,
            Exception: handle_unexpected,
        },
        lifespan=lifespan,
    )
    app.state = state
    metrics.registry.register(
        StateCollector(lambda: state if getattr(state, "live", None) is not None else None)
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.tokens = tokens
    app.state.video = video
    app.state.video_placement = placement
    return app


def app_from_env() -> Starlette:
    """``uvicorn --factory web.app:app_from_env``: the Procfile's entry point."""
    settings = load_settings()
    from web.observability import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, server_process=True)
