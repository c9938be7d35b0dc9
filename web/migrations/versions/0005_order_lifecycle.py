"""The order's life after the buy: confirmed is paid; fulfilled; refunds and history

Revision ID: 0005_order_lifecycle
Revises: 0004_stripe
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0005_order_lifecycle"
down_revision: str | None = "0004_stripe"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUS = sa.Enum(
    "confirmed", "cancelled", "refunded", name="order_status", native_enum=False, length=16
)
NEW_STATUS = sa.Enum(
    "paid", "fulfilled", "cancelled", "refunded", name="order_status", native_enum=False, length=16
)
REFUND_STATE = sa.Enum(
    "pending", "succeeded", "failed", name="refund_state", native_enum=False, length=16
)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column(
            "status", existing_type=OLD_STATUS, type_=NEW_STATUS, existing_nullable=False
        )
        batch_op.add_column(
            sa.Column("refunded_minor", sa.BigInteger(), server_default="0", nullable=False)
        )
        for name in ("updated_at", "fulfilled_at", "cancelled_at", "refunded_at"):
            batch_op.add_column(sa.Column(name, core.db.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE orders SET status = 'paid' WHERE status = 'confirmed'")

    op.create_table(
        "order_refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("state", REFUND_STATE, nullable=False),
        sa.Column("cancels", sa.Boolean(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("request_key", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("failure", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", core.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_order_refunds_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_refunds_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_refunds")),
        sa.UniqueConstraint("order_id", "request_key", name="order_refund_request_key"),
        sa.UniqueConstraint("order_id", "seq", name="order_refund_seq"),
    )
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_refunds_order_id"), ["order_id"], unique=False)

    op.create_table(
        "order_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_status", NEW_STATUS, nullable=False),
        sa.Column("to_status", NEW_STATUS, nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_history_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_history")),
    )
    with op.batch_alter_table("order_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_order_history_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("order_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_history_order_id"))
    op.drop_table("order_history")
    with op.batch_alter_table("order_refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_refunds_order_id"))
    op.drop_table("order_refunds")
    # (a fulfilled order was paid: before this revision it is confirmed again)
    op.execute("UPDATE orders SET status = 'confirmed' WHERE status IN ('paid', 'fulfilled')")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for name in ("refunded_at", "cancelled_at", "fulfilled_at", "updated_at", "refunded_minor"):
            batch_op.drop_column(name)
        batch_op.alter_column(
            "status", existing_type=NEW_STATUS, type_=OLD_STATUS, existing_nullable=False
        )
