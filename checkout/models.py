"""Tables owned by checkout: users, shows, the catalog and orders (the source of truth)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from checkout.show_state import ShowStatus
from core.db import Base, UTCDateTime, new_id, utcnow
from core.roles import Role


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        length=16,
    )


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("usr"))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    display_name: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Show(Base):
    __tablename__ = "shows"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("shw"))
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[ShowStatus] = mapped_column(
        _enum(ShowStatus, "show_status"), default=ShowStatus.SCHEDULED
    )
    host_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The shop's policies for this show (shipping, returns, payment, ...): key -> text.
    policies: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")

    products: Mapped[list[Product]] = relationship(
        back_populates="show", order_by="Product.position"
    )


class Product(Base):
    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("prd"))
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # What shoppers ask (material, fit, care, ...): key -> text, answered from automatically.
    facts: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    image_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    published: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    show: Mapped[Show] = relationship(back_populates="products")
    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", order_by="Variant.position"
    )


class Variant(Base):
    __tablename__ = "variants"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("var"))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    stock: Mapped[int] = mapped_column(Integer, default=0)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    product: Mapped[Product] = relationship(back_populates="variants")


class OrderStatus(enum.StrEnum):
    """An order's state; the moves between them: ``checkout/order_states.py``."""

    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class RefundState(enum.StrEnum):
    """A refund's state; the moves between them: ``checkout/order_states.py``."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


REASON_MAX_CHARS = 200
"""A cancel's or a refund's reason (``order_refunds.reason``, ``order_history.reason``)."""


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("buyer_id", "idempotency_key", name="buyer_idempotency"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ord"))
    show_id: Mapped[str] = mapped_column(ForeignKey("shows.id"), index=True)
    buyer_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[OrderStatus] = mapped_column(
        _enum(OrderStatus, "order_status"), default=OrderStatus.PAID
    )
    # A cart's lines add up past 2**31 minor units (ten units of each at the highest price).
    total_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    payment_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The lifecycle after the buy (checkout/order_states.py, checkout/order_actions.py).
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order")


class AttemptState(enum.StrEnum):
    OPEN = "open"  # written before the provider is called; nothing confirmed yet
    CHARGING = "charging"  # the provider's id is recorded: it may be confirming
    REQUIRES_ACTION = "requires_action"  # the buyer must authenticate on the page
    ORDERED = "ordered"  # charged, and the order stands
    FAILED = "failed"  # nothing charged (or the charge was cancelled)
    REFUNDED = "refunded"  # charged, but the order could not stand: money given back


class PaymentAttempt(Base):
    """One payment of one request (buyer, idempotency key), written before the provider is
    called: any process can finish what a dead one started (``checkout/attempts.py``)."""

    __tablename__ = "payment_attempts"
    __table_args__ = (UniqueConstraint("buyer_id", "idempotency_key", name="attempt_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    show_id: Mapped[str] = mapped_column(String(40))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    state: Mapped[AttemptState] = mapped_column(_enum(AttemptState, "attempt_state"), index=True)
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    owner: Mapped[str] = mapped_column(String(64))
    # the holds it pays for: [{variant_id, hold_id, quantity, unit_price_minor, epoch, idem}]
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WorkerBeat(Base):
    """A worker process's heartbeat: the attempts of a worker silent too long are settled
    by the others."""

    __tablename__ = "worker_beats"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TestPayment(Base):
    """The built-in test provider's own ledger (a real provider keeps its own books)."""

    __test__ = False
    __tablename__ = "test_provider_payments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    attempt_id: Mapped[str] = mapped_column(String(40), unique=True)
    buyer_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # pending | requires_action | succeeded | failed | cancelled
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TestRefund(Base):
    __test__ = False
    __tablename__ = "test_provider_refunds"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("test_provider_payments.id"))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    variant_id: Mapped[str] = mapped_column(ForeignKey("variants.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_minor: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="lines")


class OrderRefund(Base):
    """One refund of an order, written ``pending`` before the provider is asked."""

    __tablename__ = "order_refunds"
    __table_args__ = (
        UniqueConstraint("order_id", "seq", name="order_refund_seq"),
        UniqueConstraint("order_id", "request_key", name="order_refund_request_key"),
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("rfd"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per order: the provider key's n
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[RefundState] = mapped_column(_enum(RefundState, "refund_state"))
    cancels: Mapped[bool] = mapped_column(default=False)  # the refund of a cancel
    idempotency_key: Mapped[str] = mapped_column(String(80))  # refund:{order_id}:{seq}
    request_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(REASON_MAX_CHARS), nullable=True)
    failure: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OrderHistory(Base):
    """What happened to an order after the buy, one row a step, oldest first."""

    __tablename__ = "order_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # fulfil | cancel | refund
    from_status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus, "order_status"))
    to_status: Mapped[OrderStatus] = mapped_column(_enum(OrderStatus, "order_status"))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(REASON_MAX_CHARS), nullable=True)
    actor: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
