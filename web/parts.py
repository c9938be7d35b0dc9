"""The app's parts, typed: what ``create_app`` makes, and what its lifespan opens.

Routes reach them through ``parts(app)`` (one attribute of ``app.state``, checked once),
so mypy sees every part's type: that ``CheckoutService`` is live's ``CheckoutPort``, that
``VideoAccess`` is signaling's ``ShowAccess``.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette

from checkout.service import CheckoutService
from config import Settings
from live.service import LiveService
from signaling import SignalingService
from signaling.placement import VideoPlacement
from web.auth import TokenIssuer
from web.event_bus import EventBus
from web.observability import Metrics
from web.resources import Resources
from web.socket_limits import SocketLimits
from web.video_access import VideoAccess
from webhooks.delivery import Deliverer


@dataclass(frozen=True)
class Running:
    """The parts that exist while the app runs (Redis and the database are open)."""

    resources: Resources
    checkout: CheckoutService
    live: LiveService
    webhooks: Deliverer


class Parts:
    """Every part of one app. The running ones exist between start and shutdown."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        tokens: TokenIssuer,
        bus: EventBus,
        access: VideoAccess,
        video: SignalingService,
        placement: VideoPlacement,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.tokens = tokens
        self.bus = bus
        self.access = access
        self.video = video
        self.placement = placement
        self.sockets = SocketLimits(settings.max_sockets_per_user, settings.max_sockets_per_address)
        self.running: Running | None = None

    def _started(self) -> Running:
        if self.running is None:
            raise RuntimeError("the app has not started (its lifespan has not run)")
        return self.running

    @property
    def resources(self) -> Resources:
        return self._started().resources

    @property
    def checkout(self) -> CheckoutService:
        return self._started().checkout

    @property
    def live(self) -> LiveService:
        return self._started().live

    @property
    def webhooks(self) -> Deliverer:
        return self._started().webhooks


def parts(app: Starlette) -> Parts:
    """The parts of ``app`` (made by ``web.app.create_app``)."""
    found = app.state.parts
    assert isinstance(found, Parts), "not an app made by create_app"
    return found
