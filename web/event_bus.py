"""What the HTTP API and signaling announce to the domains: a show's status, its catalog
and its video changed.

The app factory builds one ``EventBus``; checkout and live subscribe to it, so the routes
in ``web/api.py`` hold no business rule of their own and know no listener.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from checkout.show_state import ShowStatus

log = logging.getLogger(__name__)

StatusListener = Callable[[str, ShowStatus], Awaitable[None]]
CatalogListener = Callable[[str], Awaitable[None]]
VideoListener = Callable[[str, str], Awaitable[None]]
HealthListener = Callable[[str, dict[str, Any]], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self.status_listeners: list[StatusListener] = []
        self.catalog_listeners: list[CatalogListener] = []
        self.video_listeners: list[VideoListener] = []
        self.health_listeners: list[HealthListener] = []

    async def show_status_changed(self, show_id: str, status: ShowStatus) -> None:
        """Every listener hears it, even when one before it fails (the end of a show must
        reach the live channel and the video though releasing the carts failed); the first
        failure is raised once all have run."""
        failure: BaseException | None = None
        for listener in self.status_listeners:
            try:
                await listener(show_id, status)
            except Exception as exc:
                log.exception("show %s %s: a status listener failed", show_id, status.value)
                failure = failure or exc
        if failure is not None:
            raise failure

    async def catalog_changed(self, show_id: str) -> None:
        for listener in self.catalog_listeners:
            await listener(show_id)

    async def video_state_changed(self, show_id: str, state: str) -> None:
        """The show's video went live, offline or reconnecting."""
        for listener in self.video_listeners:
            await listener(show_id, state)

    async def video_health_reported(self, show_id: str, health: dict[str, Any]) -> None:
        """What the relay measured of the show's publisher (``VideoAccess``'s JSON)."""
        for listener in self.health_listeners:
            await listener(show_id, health)
