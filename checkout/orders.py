"""Orders in SQL, read back: an order by its key, a buyer's orders, a show's sales, SQL stock.

The writer (an order row and its stock decrements in one transaction) is
``checkout/order_writer.py``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from checkout.errors import NotFound
from checkout.models import Order, OrderLine, OrderStatus, Product, Show, Variant
from checkout.results import (
    BuyerOrder,
    BuyerOrderLine,
    OrderLineView,
    OrderResult,
    OrderSummary,
)

log = logging.getLogger("liveshop.checkout")
T = TypeVar("T")

SOLD = (OrderStatus.PAID, OrderStatus.FULFILLED)
"""The states of an order that stands: its units are sold (a show's sales count these)."""


@dataclass(frozen=True)
class LineSpec:
    variant_id: str
    quantity: int
    unit_price_minor: int


async def sql_stock(session: AsyncSession, variant_id: str) -> int:
    stock = await session.scalar(select(Variant.stock).where(Variant.id == variant_id))
    if stock is None:
        raise NotFound(
            "variant_not_found", f"no variant {variant_id!r}", fields={"variant_id": "unknown"}
        )
    return int(stock)


async def find_order(session: AsyncSession, buyer_id: str, idempotency_key: str) -> Order | None:
    query = (
        select(Order)
        .where(Order.buyer_id == buyer_id, Order.idempotency_key == idempotency_key)
        .options(selectinload(Order.lines))
    )
    return await session.scalar(query)


async def recent_orders(session: AsyncSession, since: datetime) -> list[Order]:
    query = select(Order).where(Order.created_at >= since).options(selectinload(Order.lines))
    return list((await session.scalars(query)).all())


class _Line(Protocol):
    @property
    def variant_id(self) -> str: ...
    @property
    def quantity(self) -> int: ...
    @property
    def unit_price_minor(self) -> int: ...


def line_views(lines: Iterable[_Line]) -> tuple[OrderLineView, ...]:
    """An order's lines as the API shows them, by variant id (an order written here, or
    read back from SQL)."""
    return tuple(
        OrderLineView(line.variant_id, line.quantity, line.unit_price_minor)
        for line in sorted(lines, key=lambda line: line.variant_id)
    )


def order_result(order: Order, *, replayed: bool = False) -> OrderResult:
    return OrderResult(
        order_id=order.id,
        show_id=order.show_id,
        buyer_id=order.buyer_id,
        status=order.status.value,
        total_minor=order.total_minor,
        currency=order.currency,
        idempotency_key=order.idempotency_key,
        lines=line_views(order.lines),
        created_at=order.created_at,
        replayed=replayed,
    )


def same_lines(order: Order, lines: Sequence[LineSpec]) -> bool:
    """Whether an order holds the same variants and quantities (prices may differ)."""
    mine = sorted((line.variant_id, line.quantity) for line in order.lines)
    return mine == sorted((line.variant_id, line.quantity) for line in lines)


async def orders_of(session: AsyncSession, show_id: str, buyer_id: str) -> list[OrderSummary]:
    query = (
        select(Order)
        .where(Order.show_id == show_id, Order.buyer_id == buyer_id)
        .options(selectinload(Order.lines))
        .order_by(Order.created_at, Order.id)
    )
    return [
        OrderSummary(
            order_id=o.id,
            buyer_id=o.buyer_id,
            status=o.status.value,
            total_minor=o.total_minor,
            currency=o.currency,
            units=sum(line.quantity for line in o.lines),
            created_at=o.created_at,
        )
        for o in (await session.scalars(query)).all()
    ]


async def buyer_orders(
    session: AsyncSession, buyer_id: str, limit: int, before: tuple[datetime, str] | None
) -> list[BuyerOrder]:
    """The buyer's own orders in every show, newest first: at most ``limit``, and only
    those older than ``before`` ((created_at, order id) of the last one of a page)."""
    query = select(Order, Show.title).join(Show, Show.id == Order.show_id)
    query = query.where(Order.buyer_id == buyer_id)
    if before is not None:
        at, order_id = before
        query = query.where(
            (Order.created_at < at) | ((Order.created_at == at) & (Order.id < order_id))
        )
    query = query.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit)
    rows = (await session.execute(query.options(selectinload(Order.lines)))).all()
    variant_ids = {line.variant_id for order, _ in rows for line in order.lines}
    names: dict[str, tuple[str, dict[str, object]]] = {}
    if variant_ids:
        found = await session.execute(
            select(Variant.id, Product.name, Variant.attributes)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.id.in_(variant_ids))
        )
        names = {vid: (name, dict(attrs or {})) for vid, name, attrs in found.all()}
    return [
        BuyerOrder(
            order_id=order.id,
            show_id=order.show_id,
            show_title=title,
            status=order.status.value,
            total_minor=order.total_minor,
            refunded_minor=order.refunded_minor,
            currency=order.currency,
            lines=tuple(
                BuyerOrderLine(
                    line.variant_id,
                    names.get(line.variant_id, ("Item", {}))[0],
                    names.get(line.variant_id, ("Item", {}))[1],
                    line.quantity,
                    line.unit_price_minor,
                )
                for line in sorted(order.lines, key=lambda line: line.variant_id)
            ),
            created_at=order.created_at,
        )
        for order, title in rows
    ]


async def show_stats(session: AsyncSession, show_id: str) -> dict[str, int]:
    """The show's sales: orders that stand (paid or fulfilled), their revenue less what was
    refunded of them, and their units."""
    sold = (Order.show_id == show_id, Order.status.in_(SOLD))
    kept = func.coalesce(func.sum(Order.total_minor - Order.refunded_minor), 0)
    count, revenue = (await session.execute(select(func.count(Order.id), kept).where(*sold))).one()
    units = await session.scalar(
        select(func.coalesce(func.sum(OrderLine.quantity), 0))
        .join(Order, Order.id == OrderLine.order_id)
        .where(*sold)
    )
    return {"orders": int(count), "revenue_minor": int(revenue), "units_sold": int(units or 0)}
