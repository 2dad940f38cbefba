"""When a delayed attempt is due: `task_execution_logs.run_at`.

Revision ID: 0012
Revises: 0011

A retry backing off (taskiq's `delay` label) is logged `pending` when it is sent, but starts
only after its delay: the client's middleware writes that moment, so a page can say
"retrying in 2 s" rather than "failed" (`GET /api/v1/tasks/{id}` answers it as `retry_at`).
NULL for every attempt sent to run at once, and for the rows logged before this revision.
Adding a nullable column without a default rewrites nothing (PostgreSQL, every partition;
SQLite).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tasklens.tracking.models import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("task_execution_logs", sa.Column("run_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("task_execution_logs", "run_at")
