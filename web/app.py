"""The composition root: one app factory that wires everything from one settings object."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from checkout.show_state import ShowStatus
from config import Settings, load_settings
from config.runtime import tune_gc
from core.errors import CodedError
from live.checkout_events import LiveEventSink
from live.service import LiveService
from signaling import SignalingConfig, SignalingService
from signaling.placement import VideoPlacement
from web import (
    api,
    checkout_api,
    live_ws,
    orders_api,
    pages,
    payments_api,
    stream_keys_api,
    webhooks_api,
)
from web.auth import TokenIssuer
from web.errors import handle_coded, handle_disconnect, handle_http, handle_redis, handle_unexpected
from web.event_bus import EventBus
from web.migrate import upgrade
from web.observability import Metrics, MetricsMiddleware, StateCollector
from web.parts import Parts, Running
from web.resources import Resources
from web.video_access import VideoAccess
from webhooks.delivery import Deliverer, DeliveryConfig

log = logging.getLogger("liveshop.app")


def create_app(
    settings: Settings | None = None, *, migrate: bool = False, server_process: bool = False
) -> Starlette:
    """Build the app. ``migrate`` applies migrations at start (the demo and tests).
    ``server_process``: the app owns its process (``liveshop serve``), so the garbage
    collector is tuned once it has started (``config.runtime.tune_gc``); tests leave it be."""
    settings = settings or load_settings()
    made = _parts(settings)
    app = Starlette(
        routes=_routes(made),
        middleware=[
            Middleware(live_ws.RawSendMiddleware),
            Middleware(MetricsMiddleware, metrics=made.metrics),
        ],
        exception_handlers={
            CodedError: handle_coded,
            ClientDisconnect: handle_disconnect,
            HTTPException: handle_http,
            RedisError: handle_redis,
            Exception: handle_unexpected,
        },
        lifespan=lambda _: _lifespan(made, migrate, server_process),
    )
    app.state.parts = made
    made.metrics.registry.register(StateCollector(lambda: made if made.running else None))
    return app


def _parts(settings: Settings) -> Parts:
    """What exists before the server starts: settings, metrics, tokens, the event bus, video."""
    tokens = TokenIssuer(settings.signing_key(), settings.token_ttl_s)
    bus = EventBus()
    access = VideoAccess(tokens, bus)
    video = SignalingService(_signaling_config(settings), access)
    # Each forward waiting on another process holds a Redis connection: a quarter of the
    # pool at most.
    placement = VideoPlacement(
        video,
        max_forwards=max(1, settings.redis_max_connections // 4),
        viewer_budget=settings.video_viewers_per_process,
        edge_idle_s=settings.video_edge_idle_s,
        feed_host=settings.video_feed_host,
        feed_port=settings.video_feed_port,
        secret=settings.signing_key().encode(),
        has_hls=video.hls.playing if settings.hls else None,
    )
    return Parts(settings, Metrics(), tokens, bus, access, video, placement)


def _signaling_config(settings: Settings) -> SignalingConfig:
    return SignalingConfig(
        ice_servers=list(settings.ice_servers),
        ice_host_addresses=list(settings.ice_host_addresses),
        recording_dir=str(settings.recording_dir) if settings.recording_dir else None,
        turn_username=settings.turn_username,
        turn_credential=settings.turn_credential,
        turn_secret=settings.turn_secret,
        turn_ttl_s=settings.turn_ttl_s,
        reconnect_grace_s=settings.reconnect_grace_s,
        hls=settings.hls,
    )


def _delivery_config(settings: Settings) -> DeliveryConfig:
    return DeliveryConfig(
        timeout_s=settings.webhook_timeout_s,
        max_age_s=settings.webhook_max_age_s,
        allow_private=settings.webhook_allow_private,
        schedule_s=tuple(settings.webhook_retry_schedule_s),
    )


def _routes(made: Parts) -> list[BaseRoute]:
    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(made.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return [
        *checkout_api.routes(),  # first: a tap is the hottest request of a drop
        *api.routes(),
        *payments_api.routes(),
        *orders_api.routes(),
        *webhooks_api.routes(),
        *stream_keys_api.routes(),
        *live_ws.routes(),
        *made.placement.routes(),
        *made.video.hls_routes(),  # (read from Redis by every process: never forwarded)
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *pages.routes(),
    ]


@contextlib.asynccontextmanager
async def _lifespan(made: Parts, migrate: bool, server_process: bool) -> AsyncIterator[None]:
    resources = await Resources.open(made.settings)
    closers: list[Callable[[], Awaitable[None]]] = [made.placement.close, made.video.close]
    try:
        if migrate:
            await upgrade(resources.engine)
        # checkout publishes its events to live's sink; live reads the catalog through
        # checkout (its CheckoutPort); both follow the shows' changes on the bus.
        checkout = await checkout_api.open_checkout(
            resources, made.settings, LiveEventSink(resources.redis), made.bus
        )
        live = LiveService(
            resources.redis,
            resources.sessions,
            checkout,
            questions_public=made.settings.questions_public,
            auto_answers=made.settings.auto_answers,
        )
        closers += [live.close, checkout.close, payments_api.closer(checkout.payments)]
        # each worker sends the due webhooks; they claim them in SQL, so never the same
        deliverer = Deliverer(resources.sessions, _delivery_config(made.settings))
        deliverer.start()
        closers.insert(0, deliverer.close)
        made.bus.status_listeners.append(live.show_status_changed)
        made.bus.catalog_listeners.append(live.catalog_changed)
        made.bus.video_listeners.append(live.video_state_changed)
        made.bus.health_listeners.append(live.video_health_reported)
        # The end of a show ends its video; a banned viewer loses theirs.
        made.bus.status_listeners.append(_end_video(made.placement))
        live.removal_listeners.append(made.placement.remove_viewer)
        made.running = Running(resources, checkout, live, deliverer)
        made.access.checkout = checkout
        made.access.live = live
        made.placement.start(resources.redis)
        made.video.start(resources.redis)  # (HLS segments are kept in Redis)
        log.info("liveshop started", extra={"redis": resources.redis_url.split("@")[-1]})
        if server_process:
            tune_gc()
        yield
    finally:
        await _close_all(closers)
        made.running = None
        made.access.checkout = None
        made.access.live = None
        await resources.close()  # last: the others still use it while closing
        log.info("liveshop stopped")


def _end_video(placement: VideoPlacement) -> Callable[[str, ShowStatus], Awaitable[None]]:
    async def status_changed(show_id: str, status: ShowStatus) -> None:
        if status is ShowStatus.ENDED:
            await placement.end_show(show_id)

    return status_changed


async def _close_all(closers: list[Callable[[], Awaitable[None]]]) -> None:
    """Close each part even when one before it fails."""
    for close in closers:
        try:
            await close()
        except Exception:
            log.exception("shutdown step failed", extra={"step": close.__qualname__})


def app_from_env() -> Starlette:
    """``uvicorn --factory web.app:app_from_env``: the Procfile's entry point."""
    settings = load_settings()
    from web.observability import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    from web.edge import EdgeHttpProtocol

    EdgeHttpProtocol.configure(settings.request_read_timeout_s, settings.max_header_bytes)
    return create_app(settings, server_process=True)
