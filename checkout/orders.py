"""The SQL guard: an order row and the conditional stock decrement commit together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from checkout.db import utcnow
from checkout.errors import NotFound, OutOfStock
from checkout.models import Order, OrderLine, OrderStatus, Variant
from checkout.views import OrderLineView, OrderResult, OrderSummary


@dataclass(frozen=True)
class LineSpec:
    variant_id: str
    quantity: int
    unit_price_minor: int


async def sql_stock(session: AsyncSession, variant_id: str) -> int:
    stock = await session.scalar(select(Variant.stock).where(Variant.id == variant_id))
    if stock is None:
        raise NotFound(
            f"no variant {variant_id!r}", code="variant_not_found", fields={"variant_id": "unknown"}
        )
    return int(stock)


async def write_order(
    session: AsyncSession,
    *,
    show_id: str,
    buyer_id: str,
    idempotency_key: str,
    currency: str,
    lines: Sequence[LineSpec],
    payment_ref: str | None,
) -> Order:
    """Insert the order and take its units from SQL stock, or raise OutOfStock naming every
    short variant. An IntegrityError means the key already made an order. The caller commits.
    """
    order = Order(
        show_id=show_id,
        buyer_id=buyer_id,
        idempotency_key=idempotency_key,
        currency=currency,
        total_minor=sum(line.quantity * line.unit_price_minor for line in lines),
        status=OrderStatus.CONFIRMED,
        payment_ref=payment_ref,
        created_at=utcnow(),
    )
    order.lines = [
        OrderLine(
            variant_id=line.variant_id,
            quantity=line.quantity,
            unit_price_minor=line.unit_price_minor,
        )
        for line in lines
    ]
    session.add(order)
    await session.flush()
    # The decrements come last, so the contended variant rows stay locked only until commit.
    short: dict[str, str] = {}
    left: dict[str, int] = {}
    for line in sorted(lines, key=lambda line: line.variant_id):
        result = await session.execute(
            update(Variant)
            .where(Variant.id == line.variant_id, Variant.stock >= line.quantity)
            .values(stock=Variant.stock - line.quantity)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            left[line.variant_id] = await sql_stock(session, line.variant_id)
            short[line.variant_id] = f"{left[line.variant_id]} available"
    if short:
        raise OutOfStock(
            "not enough units for " + ", ".join(sorted(short)),
            fields=short,
            extra={"available": left},
        )
    return order


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


def order_result(order: Order, *, replayed: bool = False) -> OrderResult:
    return OrderResult(
        order_id=order.id,
        show_id=order.show_id,
        buyer_id=order.buyer_id,
        status=order.status.value,
        total_minor=order.total_minor,
        currency=order.currency,
        idempotency_key=order.idempotency_key,
        lines=tuple(
            OrderLineView(line.variant_id, line.quantity, line.unit_price_minor)
            for line in sorted(order.lines, key=lambda line: line.variant_id)
        ),
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


async def show_stats(session: AsyncSession, show_id: str) -> dict[str, int]:
    confirmed = (Order.show_id == show_id, Order.status == OrderStatus.CONFIRMED)
    count, revenue = (
        await session.execute(
            select(func.count(Order.id), func.coalesce(func.sum(Order.total_minor), 0)).where(
                *confirmed
            )
        )
    ).one()
    units = await session.scalar(
        select(func.coalesce(func.sum(OrderLine.quantity), 0))
        .join(Order, Order.id == OrderLine.order_id)
        .where(*confirmed)
    )
    return {"orders": int(count), "revenue_minor": int(revenue), "units_sold": int(units or 0)}
