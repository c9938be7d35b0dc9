"""Structured logs (one JSON object a line, credentials redacted) and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.log_redaction import RedactSecrets

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:  # (the text RedactSecrets cleaned, when it ran)
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())  # on the handler: it sees every propagated record
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


class Metrics:
    """The app's metrics, on a registry of its own (one per app, so tests stay independent)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "liveshop_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "liveshop_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )


class StateCollector(Collector):
    """Gauges and counters read from the app's parts when Prometheus scrapes (this process).

    ``read()`` returns the app's parts (``web.parts.Parts``), or None while it is not running."""

    def __init__(self, read: Callable[[], Any]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        state = self._read()
        if state is None:
            return
        video = state.video.stats()
        gauges = {
            "liveshop_video_publishers": ("hosts publishing here", video["publishers"]),
            "liveshop_video_viewers": ("WHEP viewers served here", video["viewers"]),
            "liveshop_video_peer_connections": ("peer connections", video["peer_connections"]),
            "liveshop_video_relays": ("shows relayed here", video["relays"]),
            "liveshop_video_frames_queued": (
                "frames waiting in viewers' queues",
                video["viewer_frames_queued"],
            ),
            "liveshop_video_keyframe_skips": (
                "skips to a keyframe of the viewers connected now (slow viewers)",
                video["viewer_keyframe_skips"],
            ),
            "liveshop_live_sockets": (
                "live websockets served here",
                sum(room.active for room in state.live.rooms.values()),
            ),
            "liveshop_live_rooms": ("shows with a live room here", len(state.live.rooms)),
        }
        for name, (help_text, value) in gauges.items():
            yield GaugeMetricFamily(name, help_text, value=value)
        yield GaugeMetricFamily(
            "liveshop_video_paced_bytes_queued",
            "bytes waiting in viewers' pacers",
            value=video["paced_bytes_queued"],
        )
        counters = {
            "liveshop_video_nacks_served": (
                "packets sent again on a viewer's NACK",
                "nacks_served",
            ),
            "liveshop_video_nacks_unserved": (
                "NACKed packets too old to send again (the viewer is started again)",
                "nacks_unserved",
            ),
            "liveshop_video_reprimes": (
                "viewers started again at the cached keyframe (PLI, FIR, unserved NACK)",
                "viewer_reprimes",
            ),
            "liveshop_video_keyframe_jumps": (
                "viewers behind live who jumped to the host's next keyframe",
                "viewer_keyframe_jumps",
            ),
            "liveshop_video_stalls": (
                "times a viewer's frames waited over 500 ms with none sent",
                "viewer_stalls",
            ),
        }
        for name, (help_text, key) in counters.items():
            yield CounterMetricFamily(name, help_text, value=video[key])
        hls = CounterMetricFamily(
            "liveshop_hls_requests",
            "HLS requests answered by this process (an origin behind a CDN), by kind",
            labels=["kind"],
        )
        for kind in ("playlist", "init", "segment"):
            hls.add_metric([kind], state.video.hls.requests[kind])
        yield hls
        placement = state.placement
        yield CounterMetricFamily(
            "liveshop_video_forwarded",
            "WHIP/WHEP requests handed to the process that serves the show",
            value=placement.forwarded,
        )
        yield CounterMetricFamily(
            "liveshop_video_served_for_others",
            "WHIP/WHEP requests answered for another process",
            value=placement.served_for_others,
        )


class MetricsMiddleware:
    """Counts and times HTTP requests by route template (never by raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.log = logging.getLogger("liveshop.http")
        self._counters: dict[tuple[str, str, int], Any] = {}  # (route templates: bounded)
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - start
            method = scope["method"]
            counter = self._counters.get((method, template, status))
            if counter is None:  # labels() costs a lock and a tuple build on every request
                counter = self.metrics.requests.labels(method, template, str(status))
                self._counters[(method, template, status)] = counter
            counter.inc()
            timer = self._timers.get((method, template))
            if timer is None:
                timer = self.metrics.latency.labels(method, template)
                self._timers[(method, template)] = timer
            timer.observe(elapsed)
            if status >= 500:
                self.log.error("request failed", extra={"path": template, "status": status})
