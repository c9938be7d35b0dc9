"""What live needs from checkout: the ``CheckoutPort``, coded exactly like checkout/service.py.

live codes against this protocol and takes an implementation as a constructor argument;
the app wires ``checkout.service.CheckoutService``. Results are any objects with
``to_json()``; refusals raise ``checkout.errors.CheckoutError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from checkout.results import CatalogProduct
from checkout.show_state import ShowStatus


class JsonResult(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class CheckoutPort(Protocol):
    async def add_to_cart(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> JsonResult: ...

    async def set_cart_quantity(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> JsonResult: ...

    async def remove_from_cart(
        self, show_id: str, buyer_id: str, variant_id: str
    ) -> JsonResult: ...

    async def view_cart(self, show_id: str, buyer_id: str) -> JsonResult: ...

    async def checkout_cart(
        self, show_id: str, buyer_id: str, idempotency_key: str, payment_method: str
    ) -> JsonResult: ...

    async def buy_now(
        self,
        show_id: str,
        buyer_id: str,
        variant_id: str,
        quantity: int,
        idempotency_key: str,
        payment_method: str,
    ) -> JsonResult: ...

    async def start_deal(
        self,
        show_id: str,
        variant_id: str,
        *,
        price_minor: int,
        units: int,
        ends_at: datetime,
        per_buyer_limit: int,
    ) -> JsonResult: ...

    async def stop_deal(self, show_id: str, variant_id: str) -> Any: ...

    async def notify_me(self, show_id: str, viewer_id: str, variant_id: str) -> Any: ...

    async def availability(self, variant_ids: list[str]) -> dict[str, int]: ...

    async def deals(self, show_id: str) -> Sequence[JsonResult]: ...

    async def orders_of(self, show_id: str, buyer_id: str) -> Sequence[JsonResult]: ...

    async def stats(self, show_id: str) -> dict[str, int]: ...

    async def show_status(self, show_id: str) -> ShowStatus:
        """The show's status now; raises a coded ``show_not_found`` for an unknown show."""
        ...

    async def products(self, show_id: str) -> Sequence[CatalogProduct]:
        """The show's products with their variants (and facts), in catalog order."""
        ...

    async def policies(self, show_id: str) -> dict[str, str]:
        """The show's policies (shipping, returns, payment, ...): key -> text."""
        ...
