"""accounts: job runs, operator-raised segment events, customer events by kind and time

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import contactcenter.storage.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_UTC = contactcenter.storage.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=128), nullable=False),
        sa.Column("started_at", _UTC(), nullable=False),
        sa.Column("finished_at", _UTC(), nullable=True),
        sa.Column("result", _JSON, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "period", name="uq_job_runs_name_period"),
    )
    op.create_table(
        "segment_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("segment", _JSON, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("created_at", _UTC(), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_customer_events_kind_at", "customer_events", ["kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_customer_events_kind_at", table_name="customer_events")
    op.drop_table("segment_events")
    op.drop_table("job_runs")
