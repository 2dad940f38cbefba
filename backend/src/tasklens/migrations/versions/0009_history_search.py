"""Indexes for the history's search and sorts (`GET /monitoring/history?q=&sort=`).

Revision ID: 0009
Revises: 0008

PostgreSQL only (SQLite, the embedded mode's small log, is read with LIKE and no index):

- `task_id text_pattern_ops`: a task id prefix (`LIKE 'abc%'`), whatever the collation;
- trigram GIN (pg_trgm) on `params::text` and on `error_message`: a substring anywhere in
  them (`ILIKE '%text%'`, from 3 characters), found without reading every row;
- `(worker, created_at, id)`: one worker's tasks, newest first;
- `(started_at, id)` and `(duration_ms, id)`: a page of the log sorted by start or duration
  without sorting the whole log.

A task name is searched through the counts (its few thousand names), then the existing
task-name index. pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may
create it; it goes into TaskLens's schema unless the database already has it elsewhere.
Downgrading drops it again when it is in TaskLens's schema (which `--downgrade base` then
removes), and leaves one the database had elsewhere.
The indexes are made on the partitioned log, so every day partition has them, new ones too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {
    "ix_task_logs_task_id_prefix": "(task_id text_pattern_ops)",
    "ix_task_logs_params_trgm": "USING gin ((params::text) {ops})",
    "ix_task_logs_error_trgm": "USING gin (error_message {ops})",
    "ix_task_logs_worker": "(worker, created_at, id)",
    "ix_task_logs_started_at": "(started_at, id)",
    "ix_task_logs_duration": "(duration_ms, id)",
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    ops = f'"{_trgm_schema()}".gin_trgm_ops'
    for name, definition in INDEXES.items():
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON task_execution_logs "
            + definition.format(ops=ops)
        )


def _trgm_schema() -> str | None:
    schema: str | None = op.get_bind().scalar(
        sa.text(
            "SELECT n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
        )
    )
    return schema


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    if _trgm_schema() == context.config.attributes["schema"]:
        op.execute("DROP EXTENSION pg_trgm")
