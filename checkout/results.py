"""What the service answers: frozen dataclasses with ``to_json`` (money with currency, UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.currency import priced


def money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True)
class CartLine:
    variant_id: str
    quantity: int
    unit_price_minor: int
    currency: str
    expires_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "variant_id": self.variant_id,
            "quantity": self.quantity,
            "unit_price": money(self.unit_price_minor, self.currency),
            "expires_at": iso(self.expires_at),
        }


@dataclass(frozen=True)
class CartView:
    show_id: str
    buyer_id: str
    lines: tuple[CartLine, ...]
    expired: tuple[str, ...] = ()  # variants whose holds ran out since the last look

    @property
    def total_minor(self) -> int:
        return sum(line.quantity * line.unit_price_minor for line in self.lines)

    @property
    def currency(self) -> str | None:
        return self.lines[0].currency if self.lines else None

    def to_json(self) -> dict[str, Any]:
        return {
            "show_id": self.show_id,
            "buyer_id": self.buyer_id,
            "lines": [line.to_json() for line in self.lines],
            "total": money(self.total_minor, self.currency) if self.currency else None,
            "expired": list(self.expired),
        }


@dataclass(frozen=True)
class OrderLineView:
    variant_id: str
    quantity: int
    unit_price_minor: int

    def to_json(self, currency: str) -> dict[str, Any]:
        return {
            "variant_id": self.variant_id,
            "quantity": self.quantity,
            "unit_price": money(self.unit_price_minor, currency),
        }


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    show_id: str
    buyer_id: str
    status: str
    total_minor: int
    currency: str
    idempotency_key: str
    lines: tuple[OrderLineView, ...]
    created_at: datetime
    replayed: bool = False  # True when an earlier request with this key made the order

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "show_id": self.show_id,
            "buyer_id": self.buyer_id,
            "status": self.status,
            "total": money(self.total_minor, self.currency),
            "idempotency_key": self.idempotency_key,
            "lines": [line.to_json(self.currency) for line in self.lines],
            "created_at": iso(self.created_at),
            "replayed": self.replayed,
        }


@dataclass(frozen=True)
class OrderSummary:
    order_id: str
    buyer_id: str
    status: str
    total_minor: int
    currency: str
    units: int
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "buyer_id": self.buyer_id,
            "status": self.status,
            "total": money(self.total_minor, self.currency),
            "units": self.units,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class DealView:
    show_id: str
    variant_id: str
    price_minor: int
    regular_price_minor: int
    currency: str
    units: int
    units_left: int
    per_buyer_limit: int
    ends_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "show_id": self.show_id,
            "variant_id": self.variant_id,
            "price": money(self.price_minor, self.currency),
            "regular_price": money(self.regular_price_minor, self.currency),
            "units": self.units,
            "units_left": self.units_left,
            "per_buyer_limit": self.per_buyer_limit,
            "ends_at": iso(self.ends_at),
        }


@dataclass(frozen=True)
class CatalogVariant:
    """One variant as the catalog lists it (``stock``: the SQL units not yet sold)."""

    id: str
    sku: str
    attributes: dict[str, Any]
    price_minor: int
    currency: str
    stock: int


@dataclass(frozen=True)
class CatalogProduct:
    """One product of a show's catalog, with its variants in order."""

    id: str
    name: str
    image_url: str | None
    variants: tuple[CatalogVariant, ...]
    description: str = ""
    facts: dict[str, str] = field(default_factory=dict)  # what shoppers ask: key -> text


@dataclass(frozen=True)
class RefundView:
    refund_id: str
    amount_minor: int
    state: str  # pending | succeeded | failed
    cancels: bool  # the refund of a cancel
    reason: str | None
    failure: str | None  # the provider's code when it refused
    created_at: datetime
    completed_at: datetime | None

    def to_json(self, currency: str) -> dict[str, Any]:
        return {
            "refund_id": self.refund_id,
            "amount": money(self.amount_minor, currency),
            "state": self.state,
            "cancels": self.cancels,
            "reason": self.reason,
            "failure": self.failure,
            "created_at": iso(self.created_at),
            "completed_at": iso(self.completed_at),
        }


@dataclass(frozen=True)
class OrderStep:
    """One move of an order after the buy (its history, oldest first)."""

    action: str  # fulfil | cancel | refund
    from_status: str
    to_status: str
    amount_minor: int | None
    reason: str | None
    actor: str  # "admin" or the host's user id
    at: datetime

    def to_json(self, currency: str) -> dict[str, Any]:
        return {
            "action": self.action,
            "from": self.from_status,
            "to": self.to_status,
            "amount": None if self.amount_minor is None else money(self.amount_minor, currency),
            "reason": self.reason,
            "actor": self.actor,
            "at": iso(self.at),
        }


@dataclass(frozen=True)
class OrderDetail:
    """An order as staff see it: its state after the buy, and (one order) its history."""

    order_id: str
    show_id: str
    buyer_id: str
    status: str
    total_minor: int
    refunded_minor: int
    currency: str
    payment_ref: str | None
    lines: tuple[OrderLineView, ...]
    created_at: datetime
    updated_at: datetime | None
    fulfilled_at: datetime | None
    cancelled_at: datetime | None
    refunded_at: datetime | None
    refunds: tuple[RefundView, ...] | None = None  # None in a list of orders
    history: tuple[OrderStep, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.currency
        out: dict[str, Any] = {
            "order_id": self.order_id,
            "show_id": self.show_id,
            "buyer_id": self.buyer_id,
            "status": self.status,
            "total": money(self.total_minor, c),
            "refunded": money(self.refunded_minor, c),
            "payment_ref": self.payment_ref,
            "lines": [line.to_json(c) for line in self.lines],
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "fulfilled_at": iso(self.fulfilled_at),
            "cancelled_at": iso(self.cancelled_at),
            "refunded_at": iso(self.refunded_at),
        }
        if self.refunds is not None:
            out["refunds"] = [r.to_json(c) for r in self.refunds]
        if self.history is not None:
            out["history"] = [s.to_json(c) for s in self.history]
        return out


@dataclass(frozen=True)
class BuyerOrderLine:
    """One line of a buyer's order, named as the shopper saw it."""

    variant_id: str
    product_name: str
    options: dict[str, Any]
    quantity: int
    unit_price_minor: int


@dataclass(frozen=True)
class BuyerOrder:
    """One of a buyer's own orders, in any show (``GET /api/orders``): amounts carry the
    currency's exponent (ISO 4217) so that a page formats them by its minor unit."""

    order_id: str
    show_id: str
    show_title: str
    status: str
    total_minor: int
    refunded_minor: int
    currency: str
    lines: tuple[BuyerOrderLine, ...]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        c = self.currency
        return {
            "order_id": self.order_id,
            "show_id": self.show_id,
            "show_title": self.show_title,
            "status": self.status,
            "total": priced(self.total_minor, c),
            "refunded": priced(self.refunded_minor, c),
            "units": sum(line.quantity for line in self.lines),
            "lines": [
                {
                    "variant_id": line.variant_id,
                    "product_name": line.product_name,
                    "options": line.options,
                    "quantity": line.quantity,
                    "unit_price": priced(line.unit_price_minor, c),
                }
                for line in self.lines
            ],
            "created_at": iso(self.created_at),
        }
