"""automatic answers: products' facts, shows' policies, a question's product and the source
of its automatic answer

Revision ID: 0008_answers
Revises: 0007_stream_keys
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_answers"
down_revision: str | None = "0007_stream_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("facts", sa.JSON(), server_default="{}", nullable=False))
    with op.batch_alter_table("shows", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policies", sa.JSON(), server_default="{}", nullable=False))
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answer_source", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("product_name", sa.String(length=200), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_questions_product_name"), ["product_name"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("questions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_questions_product_name"))
        batch_op.drop_column("product_name")
        batch_op.drop_column("answer_source")
    with op.batch_alter_table("shows", schema=None) as batch_op:
        batch_op.drop_column("policies")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("facts")
