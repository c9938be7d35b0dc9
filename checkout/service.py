"""CheckoutService: the one face of checkout the app and the live channel use; it wires the
parts and hands each call to its owner: ``buy`` (one tap, paying), ``cart``, ``deals``,
``recovery`` (sweeper, rebuild), ``stock`` (restock, notify-me), ``reports`` (SQL reads),
``order_actions`` (an order's life after the buy: fulfil, cancel, refund),
over the shared ``lookups`` and ``stock_events``, the Redis gate ``inventory`` and the
SQL guard ``order_writer``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout import order_writer
from checkout.attempts import Attempts, worker_id
from checkout.buy import Buying
from checkout.cart import Carts
from checkout.deals import Deals
from checkout.events import EventSink
from checkout.inventory import Inventory
from checkout.lookups import Lookups
from checkout.models import OrderStatus
from checkout.order_actions import OrderActions
from checkout.payments import PaymentProvider
from checkout.provider_events import PaymentEvent, PaymentEventKind
from checkout.reconcile import Reconciler
from checkout.recovery import Recovery
from checkout.reports import Reports
from checkout.results import (
    BuyerOrder,
    CartView,
    CatalogProduct,
    DealView,
    OrderDetail,
    OrderResult,
    OrderSummary,
)
from checkout.settle import Settler
from checkout.show_state import ShowStatus
from checkout.stock import Stock
from checkout.stock_events import StockEvents
from core.aio import stop_tasks
from core.group_commit import GroupCommit

log = logging.getLogger("liveshop.checkout")


class CheckoutService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: aioredis.Redis,
        events: EventSink,
        payments: PaymentProvider,
        *,
        cart_hold_s: int,
        payment_hold_s: int,
        group: GroupCommit | None = None,
    ) -> None:
        if payment_hold_s <= payments.timeout_s:
            raise ValueError("the payment hold must outlast the payment provider's timeout")
        self.sessions = sessions
        self.redis = redis
        self.events = events
        self.payments = payments
        self.cart_hold_s = cart_hold_s
        self.payment_hold_s = payment_hold_s
        self._lookups = Lookups(sessions)
        self.inventory = Inventory(redis, self._lookups.sql_stock)
        self.writer = order_writer.OrderWriter(sessions)
        self._stock_events = StockEvents(events, self.inventory)
        self.inventory.on_swept = self._stock_events.swept  # releases inside a refusal
        inventory, lookups, stock_events = self.inventory, self._lookups, self._stock_events
        # (the small writes of paying share transactions on a thread: core/group_commit.py)
        self.group = group or GroupCommit.beside(sessions)
        self.attempts = Attempts(sessions, worker_id(), self.group)
        self._settler = Settler(
            sessions, redis, inventory, self.writer, payments, self.attempts, stock_events,
            payment_hold_s=payment_hold_s,
        )  # fmt: skip
        self._buying = Buying(
            sessions, redis, inventory, payments, self.attempts, self._settler, lookups,
            stock_events, payment_hold_s=payment_hold_s,
        )  # fmt: skip
        self._carts = Carts(
            sessions, redis, inventory, lookups, stock_events, self._buying,
            cart_hold_s=cart_hold_s, payment_hold_s=payment_hold_s,
        )  # fmt: skip
        self._deals = Deals(redis, inventory, lookups, stock_events)
        self._recovery = Recovery(sessions, redis, inventory, lookups, stock_events)
        self._stock = Stock(sessions, inventory, lookups, stock_events)
        self._reports = Reports(sessions)
        self._reconciler = Reconciler(sessions)
        self._orders = OrderActions(sessions, payments, inventory, stock_events)
        self._tasks: list[asyncio.Task[None]] = []

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.inventory.register()
        await self.writer.start()
        await self.rebuild()
        await self.attempts.beat()
        self._tasks = [
            asyncio.create_task(self._settler.run(), name="checkout-settler"),
            asyncio.create_task(self._recovery.run(), name="checkout-sweeper"),
            asyncio.create_task(self._stock_events.run(), name="checkout-stock-events"),
        ]

    async def close(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks = []
        await self.writer.close()  # (its last orders may start after-order work)
        await self.settled(timeout_s=2.0)  # orders already answered finish first (bounded)
        await self.inventory.batcher.close()
        await self.group.close()
        try:
            await self.attempts.leave()
        except Exception as exc:  # (the database is gone: the beat just grows old)
            log.warning("worker beat not removed: %r", exc)

    async def settled(self, timeout_s: float = 5.0) -> None:
        """Wait for the work answered orders left behind (Redis commits, their events)."""
        await self._buying.settled(timeout_s)

    async def rebuild(self) -> None:
        await self._recovery.rebuild()

    async def prepare_show(self, show_id: str) -> None:
        await self._recovery.prepare_show(show_id)

    def invalidate_show(self, show_id: str) -> None:
        self._lookups.invalidate_show(show_id)

    async def release_show_carts(self, show_id: str) -> int:
        """The show ended: its carts' held units go back to stock (Carts.release_show)."""
        return await self._carts.release_show(show_id)

    async def sweep_once(self) -> None:
        await self._recovery.sweep_once()

    async def settle_once(self) -> None:
        """Settle the payment attempts of dead or stuck owners (the settler's pass)."""
        await self._settler.settle_once()

    # -- buying ----------------------------------------------------------------------------

    async def buy_now(
        self,
        show_id: str,
        buyer_id: str,
        variant_id: str,
        quantity: int,
        idempotency_key: str,
        payment_method: str,
    ) -> OrderResult:
        return await self._buying.buy_now(
            show_id, buyer_id, variant_id, quantity, idempotency_key, payment_method
        )

    async def add_to_cart(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> CartView:
        return await self._carts.add_to_cart(show_id, buyer_id, variant_id, quantity)

    async def set_cart_quantity(
        self, show_id: str, buyer_id: str, variant_id: str, quantity: int
    ) -> CartView:
        return await self._carts.set_cart_quantity(show_id, buyer_id, variant_id, quantity)

    async def remove_from_cart(self, show_id: str, buyer_id: str, variant_id: str) -> CartView:
        return await self._carts.remove_from_cart(show_id, buyer_id, variant_id)

    async def view_cart(self, show_id: str, buyer_id: str) -> CartView:
        return await self._carts.view_cart(show_id, buyer_id)

    async def checkout_cart(
        self, show_id: str, buyer_id: str, idempotency_key: str, payment_method: str
    ) -> OrderResult:
        return await self._carts.checkout_cart(show_id, buyer_id, idempotency_key, payment_method)

    async def payment_event(self, event: PaymentEvent) -> bool:
        """Apply a provider's verified event once: False for a duplicate (nothing changed).
        A payment that succeeded or failed while its attempt waited for the buyer (3-D
        Secure completed on the page) becomes the order, or gives the units back, now."""
        if not await self._reconciler.payment_event(event):
            return False
        if event.kind is PaymentEventKind.SUCCEEDED:
            await self._settler.provider_said(event.ref, succeeded=True)
        elif event.kind is PaymentEventKind.FAILED:
            await self._settler.provider_said(event.ref, succeeded=False)
        return True

    # -- deals, stock, reports -------------------------------------------------------------

    async def start_deal(
        self,
        show_id: str,
        variant_id: str,
        *,
        price_minor: int,
        units: int,
        ends_at: datetime,
        per_buyer_limit: int,
    ) -> DealView:
        return await self._deals.start(
            show_id,
            variant_id,
            price_minor=price_minor,
            units=units,
            ends_at=ends_at,
            per_buyer_limit=per_buyer_limit,
        )

    async def stop_deal(self, show_id: str, variant_id: str) -> None:
        await self._deals.stop(show_id, variant_id)

    async def deals(self, show_id: str) -> list[DealView]:
        return await self._deals.running(show_id)

    async def notify_me(self, show_id: str, viewer_id: str, variant_id: str) -> None:
        await self._stock.notify_me(show_id, viewer_id, variant_id)

    async def availability(self, variant_ids: list[str]) -> dict[str, int]:
        return await self._stock.availability(variant_ids)

    async def set_stock(self, variant_id: str, stock: int) -> dict[str, Any]:
        return await self._stock.set_stock(variant_id, stock)

    async def orders_of(self, show_id: str, buyer_id: str) -> list[OrderSummary]:
        return await self._reports.orders_of(show_id, buyer_id)

    async def buyer_orders(
        self, buyer_id: str, limit: int, before: tuple[datetime, str] | None = None
    ) -> list[BuyerOrder]:
        """The buyer's own orders across shows, newest first (``GET /api/orders``)."""
        return await self._reports.buyer_orders(buyer_id, limit, before)

    async def show_status(self, show_id: str) -> ShowStatus:
        return await self._reports.show_status(show_id)

    async def products(self, show_id: str) -> list[CatalogProduct]:
        return await self._reports.products(show_id)

    async def policies(self, show_id: str) -> dict[str, str]:
        return await self._reports.policies(show_id)

    async def stats(self, show_id: str) -> dict[str, int]:
        return await self._reports.stats(show_id)

    # -- an order's life after the buy (staff) -----------------------------------------

    async def order_show(self, order_id: str) -> str:
        """The show an order was bought in (``order_not_found`` when there is none)."""
        return await self._orders.show_of(order_id)

    async def order(self, order_id: str) -> OrderDetail:
        return await self._orders.detail(order_id)

    async def show_orders(
        self, show_id: str, status: OrderStatus | None = None
    ) -> list[OrderDetail]:
        await self._reports.show_status(show_id)  # show_not_found
        return await self._orders.of_show(show_id, status)

    async def fulfil_order(self, order_id: str, actor: str) -> OrderDetail:
        return await self._orders.fulfil(order_id, actor)

    async def cancel_order(self, order_id: str, actor: str, reason: str | None) -> OrderDetail:
        return await self._orders.cancel(order_id, actor, reason)

    async def refund_order(
        self,
        order_id: str,
        actor: str,
        amount_minor: int | None = None,
        reason: str | None = None,
        request_key: str | None = None,
    ) -> OrderDetail:
        return await self._orders.refund(order_id, actor, amount_minor, reason, request_key)
