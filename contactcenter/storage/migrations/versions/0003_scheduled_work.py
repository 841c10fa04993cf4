"""scheduled work

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import contactcenter.storage.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "scheduled_work",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("due_at", contactcenter.storage.models.UTCDateTime(), nullable=False),
        sa.Column("latest_at", contactcenter.storage.models.UTCDateTime(), nullable=True),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", contactcenter.storage.models.UTCDateTime(), nullable=False),
        sa.Column("done_at", contactcenter.storage.models.UTCDateTime(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("scheduled_work", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduled_work_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index("ix_scheduled_work_due", ["state", "due_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("scheduled_work", schema=None) as batch_op:
        batch_op.drop_index("ix_scheduled_work_due")
        batch_op.drop_index(batch_op.f("ix_scheduled_work_customer_id"))

    op.drop_table("scheduled_work")
