"""What checkout tells the shop's own systems through webhooks (README "Webhooks"): the
payload of each event, written with ``webhooks.outbox`` in the SQL transaction of the
change itself: an order's and a sold-out variant's in the order writer's, a show's in
``catalog.change_status``'s. Deals live in Redis only, so theirs is a small transaction of
its own after the change, best effort (a database error is logged, the deal stands).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from checkout.models import Order, Show, Variant
from checkout.orders import order_result
from checkout.results import OrderResult
from checkout.show_state import ShowStatus
from webhooks import outbox

log = logging.getLogger("liveshop.checkout")


@dataclass(frozen=True)
class _VariantRow:
    sku: str
    product_id: str
    stock: int


def money(amount: int | None, currency: str) -> dict[str, Any] | None:
    return None if amount is None else {"amount": amount, "currency": currency}


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def order_data(
    order: OrderResult,
    variants: dict[str, _VariantRow],
    *,
    refunded_minor: int | None = None,
    reason: str | None = None,
    lifecycle: bool = False,
) -> dict[str, Any]:
    """An order's payload (``order.*``); the lifecycle's events add ``refunded`` and
    ``reason``."""
    data: dict[str, Any] = {
        "order_id": order.order_id,
        "show_id": order.show_id,
        "buyer_id": order.buyer_id,
        "status": order.status,
        "lines": [
            {
                "variant_id": line.variant_id,
                "product_id": _row(variants, line.variant_id, "product_id"),
                "sku": _row(variants, line.variant_id, "sku"),
                "quantity": line.quantity,
                "unit_price": money(line.unit_price_minor, order.currency),
            }
            for line in order.lines
        ],
        "total": money(order.total_minor, order.currency),
        "created_at": iso(order.created_at),
    }
    if lifecycle:
        data["refunded"] = money(refunded_minor, order.currency)
        data["reason"] = reason
    return data


def _row(variants: dict[str, _VariantRow], variant_id: str, name: str) -> str | None:
    row = variants.get(variant_id)
    return None if row is None else str(getattr(row, name))


async def _variants(session: AsyncSession, ids: Iterable[str]) -> dict[str, _VariantRow]:
    rows = await session.execute(
        select(Variant.id, Variant.sku, Variant.product_id, Variant.stock).where(
            Variant.id.in_(sorted(set(ids)))
        )
    )
    return {vid: _VariantRow(sku, product_id, stock) for vid, sku, product_id, stock in rows.all()}


async def orders_paid(session: AsyncSession, orders: Sequence[OrderResult]) -> None:
    """``order.paid`` for each order the writer just wrote, and ``product.sold_out`` for
    each of their variants whose SQL stock this transaction took to 0 (it took at least
    one unit of each, so a stock of 0 now was above 0 before): one read of the endpoints,
    one of the variants, one insert of messages and one of deliveries (executemany)."""
    if not orders:
        return
    subs = await outbox.subscribers(session)
    paid, sold_out = subs.want("order.paid"), subs.want("product.sold_out")
    if not (paid or sold_out):
        return
    shows = {line.variant_id: o.show_id for o in orders for line in o.lines}
    variants = await _variants(session, shows)
    events: list[outbox.Event] = []
    if paid:
        events += [("order.paid", order_data(o, variants)) for o in orders]
    if sold_out:
        events += [
            (
                "product.sold_out",
                {
                    "show_id": shows[vid],
                    "product_id": row.product_id,
                    "variant_id": vid,
                    "sku": row.sku,
                },
            )
            for vid, row in sorted(variants.items())
            if row.stock == 0
        ]
    await outbox.enqueue_many(session, events, subs)


async def order_changed(
    session: AsyncSession,
    event_type: str,
    order: Order,
    *,
    refunded_minor: int | None = None,
    reason: str | None = None,
) -> str:
    """``order.fulfilled``, ``order.cancelled`` or ``order.refunded`` of an order row, in
    the caller's transaction (for the order lifecycle); the message id."""
    await session.refresh(order, ["lines"])
    paid = order_result(order)
    variants = await _variants(session, (line.variant_id for line in paid.lines))
    data = order_data(paid, variants, refunded_minor=refunded_minor, reason=reason, lifecycle=True)
    return await outbox.enqueue(session, event_type, data)


async def show_changed(session: AsyncSession, show: Show) -> None:
    """``show.started`` or ``show.ended``, in ``change_status``'s transaction."""
    kinds = {ShowStatus.LIVE: "show.started", ShowStatus.ENDED: "show.ended"}
    kind = kinds.get(show.status)
    if kind is None:
        return
    await outbox.enqueue(
        session,
        kind,
        {
            "show_id": show.id,
            "title": show.title,
            "status": show.status.value,
            "started_at": iso(show.started_at),
            "ended_at": iso(show.ended_at),
        },
    )


async def deal_started(
    sessions: async_sessionmaker[AsyncSession],
    show_id: str,
    variant_id: str,
    *,
    price_minor: int,
    regular_price_minor: int,
    currency: str,
    units: int,
    per_buyer_limit: int,
    ends_at: datetime,
) -> None:
    data = {
        "show_id": show_id,
        "variant_id": variant_id,
        "deal_price": money(price_minor, currency),
        "regular_price": money(regular_price_minor, currency),
        "units": units,
        "per_buyer_limit": per_buyer_limit,
        "ends_at": iso(ends_at),
    }
    await _on_its_own(sessions, "deal.started", data)


async def deal_ended(
    sessions: async_sessionmaker[AsyncSession], show_id: str, variant_id: str, reason: str
) -> None:
    """``deal.ended``: ``stopped`` by the host, or ``expired`` (the sweeper)."""
    data = {"show_id": show_id, "variant_id": variant_id, "reason": reason}
    await _on_its_own(sessions, "deal.ended", data)


async def _on_its_own(
    sessions: async_sessionmaker[AsyncSession], event_type: str, data: dict[str, Any]
) -> None:
    try:
        async with sessions.begin() as session:
            await outbox.enqueue(session, event_type, data)
    except Exception as exc:  # the deal changed in Redis already: it stands
        log.warning("webhook event not written", extra={"type": event_type, "error": repr(exc)})
