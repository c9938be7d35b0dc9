"""payment attempts (written before the provider is called), worker beats, a test ledger

Revision ID: 0003_payment_attempts
Revises: 0002_order_total_bigint
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0003_payment_attempts"
down_revision: str | None = "0002_order_total_bigint"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("show_id", sa.String(length=40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=255), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "open",
                "charging",
                "requires_action",
                "ordered",
                "failed",
                "refunded",
                name="attempt_state",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=40), nullable=True),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_attempts")),
        sa.UniqueConstraint("buyer_id", "idempotency_key", name="attempt_key"),
    )
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payment_attempts_provider_ref"), ["provider_ref"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_payment_attempts_state"), ["state"], unique=False)

    op.create_table(
        "test_provider_payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("attempt_id", sa.String(length=40), nullable=False),
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_provider_payments")),
        sa.UniqueConstraint("attempt_id", name=op.f("uq_test_provider_payments_attempt_id")),
    )
    op.create_table(
        "worker_beats",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("beat_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_beats")),
    )
    op.create_table(
        "test_provider_refunds",
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("payment_id", sa.String(length=40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["test_provider_payments.id"],
            name=op.f("fk_test_provider_refunds_payment_id_test_provider_payments"),
        ),
        sa.PrimaryKeyConstraint("idempotency_key", name=op.f("pk_test_provider_refunds")),
    )


def downgrade() -> None:
    op.drop_table("test_provider_refunds")
    op.drop_table("worker_beats")
    op.drop_table("test_provider_payments")
    with op.batch_alter_table("payment_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_attempts_state"))
        batch_op.drop_index(batch_op.f("ix_payment_attempts_provider_ref"))

    op.drop_table("payment_attempts")
