"""contacts: the customer's history index ends in id, the history's tie-breaker

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.drop_index("ix_contacts_customer_created")
        batch_op.create_index(
            "ix_contacts_customer_created", ["customer_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch_op:
        batch_op.drop_index("ix_contacts_customer_created")
        batch_op.create_index(
            "ix_contacts_customer_created", ["customer_id", "created_at"], unique=False)
