"""Failed tasks taken out of the failure views: dismissed, or retried in bulk.

Revision ID: 0011
Revises: 0010

One row per task (`task_id` its key): who took it out, when, and the task a bulk retry sent
in its place. The log rows are untouched; retention drops them as before. The columns are
spelled out, not copied from the model: a migration is a snapshot, and a later column added
to `tracking.models.TaskDismissal` comes with its own revision.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_dismissals",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("dismissed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dismissed_by", sa.String(64), nullable=False),
        sa.Column("retried_as", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("task_dismissals")
