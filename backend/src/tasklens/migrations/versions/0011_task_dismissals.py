"""Failed tasks taken out of the failure views: dismissed, or retried in bulk.

Revision ID: 0011
Revises: 0010

One row per task (`task_id` its key): who took it out, when, and the task a bulk retry sent
in its place. The log rows are untouched; retention drops them as before. The columns are
the model's (`tracking.models.TaskDismissal`), defined there once.
"""

from collections.abc import Sequence

from alembic import op

from tasklens.tracking.models import TaskDismissal

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    columns = [column._copy() for column in TaskDismissal.__table__.columns]  # type: ignore[attr-defined]
    op.create_table("task_dismissals", *columns)


def downgrade() -> None:
    op.drop_table("task_dismissals")
