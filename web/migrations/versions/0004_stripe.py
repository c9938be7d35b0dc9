"""payment_customers (card on file) and provider_events (webhook events handled)

Revision ID: 0004_stripe
Revises: 0003_payment_attempts
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db

revision: str = "0004_stripe"
down_revision: str | None = "0003_payment_attempts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_customers",
        sa.Column("buyer_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("default_payment_method", sa.String(length=255), nullable=True),
        sa.Column("created_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("buyer_id", name=op.f("pk_payment_customers")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_payment_customers_customer_id")),
    )
    op.create_table(
        "provider_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=True),
        sa.Column("received_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_events")),
    )


def downgrade() -> None:
    op.drop_table("provider_events")
    op.drop_table("payment_customers")
