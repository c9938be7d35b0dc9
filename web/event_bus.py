"""What the HTTP API asks of the domains when the catalog or a show changes.

The app factory builds one ``EventBus``; checkout and live plug in through it, so the
routes in ``web/api.py`` never hold business rules of their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from checkout import catalog
from checkout.service import CheckoutService
from checkout.show_state import ShowStatus
from web.resources import Resources

Listener = Callable[[str, ShowStatus], Awaitable[None]]


class EventBus:
    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.status_listeners: list[Listener] = []
        self.catalog_listeners: list[Callable[[str], Awaitable[None]]] = []
        self.video_listeners: list[Callable[[str, str], Awaitable[None]]] = []
        self.checkout: CheckoutService | None = None  # set by the app: restock through it

    async def set_stock(self, variant_id: str, stock: int) -> dict[str, Any]:
        if self.checkout is not None:  # SQL and Redis move together
            return await self.checkout.set_stock(variant_id, stock)
        async with self.resources.sessions.begin() as session:
            variant = await catalog.set_stock(session, variant_id, stock)
            return {"id": variant.id, "sku": variant.sku, "stock": variant.stock}

    async def show_status_changed(self, show_id: str, status: ShowStatus) -> None:
        for listener in self.status_listeners:
            await listener(show_id, status)

    async def catalog_changed(self, show_id: str) -> None:
        for listener in self.catalog_listeners:
            await listener(show_id)

    async def video_state_changed(self, show_id: str, state: str) -> None:
        """The show's video went live, offline or reconnecting."""
        for listener in self.video_listeners:
            await listener(show_id, state)
