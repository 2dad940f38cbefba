"""An index of the log's later attempts, from which the reaper finds superseded rows.

Revision ID: 0016
Revises: 0015

The reaper closes a `pending` or `running` row that a later attempt of its task superseded
(reaper.py). Looked for from the earlier rows, that read every old `pending` row of a backlog
each pass; looked for from the later attempts (`attempt > 1`: a redelivery or a retry, few),
it reads this partial index and probes the upsert key per task.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_task_logs_later_attempts"


def upgrade() -> None:
    op.create_index(
        NAME,
        "task_execution_logs",
        ["task_id", "attempt"],
        postgresql_where=sa.text("attempt > 1"),
        sqlite_where=sa.text("attempt > 1"),
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="task_execution_logs")
