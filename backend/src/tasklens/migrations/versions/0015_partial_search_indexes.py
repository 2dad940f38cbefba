"""The log's search indexes hold only the row versions a search can find there, and one fewer.

Revision ID: 0015
Revises: 0014

A task's row is written three times (pending, running, its outcome) and every write is a new
row version with an entry in every index of the log (the status changes, and it is indexed, so
no update is HOT). The indexes of 0009 that a search reads only for some rows become partial:

- `ix_task_logs_error_trgm` only where `error_message IS NOT NULL` (a failed outcome): before,
  each version without an error added a NULL entry. `error_message ILIKE …` implies the
  condition, so the same queries use it.
- `ix_task_logs_worker` only where `worker IS NOT NULL` (a pending row has none):
  `worker = …` implies it.
- `ix_task_logs_params_trgm` only for terminal rows: a row's params are the same in its three
  versions, and the trigram entries of the pending and running ones were the largest single
  cost of a write. The history search looks for params in terminal rows through this index and
  in pending or running rows through `ix_task_logs_status` (`monitoring.HistoryFilter`).

And the upsert key `(task_id, attempt, created_at)` becomes a unique index with
`text_pattern_ops` on task_id instead of a constraint with the default operator class, so it
also finds a task id prefix (`LIKE 'abc%'`, whatever the collation) and
`ix_task_logs_task_id_prefix`, an index on task_id alone, goes. Equality, and so the upsert's
`ON CONFLICT (task_id, attempt, created_at)`, is the same in both operator classes.

PostgreSQL only, as 0009. The indexes are rebuilt on the partitioned log (every partition).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERMINAL = "('success', 'failed', 'cancelled')"
# name: (definition as 0009 made it, the condition added here)
PARTIAL = {
    "ix_task_logs_params_trgm": ("USING gin ((params::text) {ops})", f"status IN {TERMINAL}"),
    "ix_task_logs_error_trgm": ("USING gin (error_message {ops})", "error_message IS NOT NULL"),
    "ix_task_logs_worker": ("(worker, created_at, id)", "worker IS NOT NULL"),
}


def _trgm_ops() -> str:
    schema = op.get_bind().scalar(
        sa.text(
            "SELECT n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
        )
    )
    return f'"{schema}".gin_trgm_ops'


def _rebuild(partial: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    ops = _trgm_ops()
    for name, (definition, condition) in PARTIAL.items():
        op.execute(f"DROP INDEX {name}")
        where = f" WHERE {condition}" if partial else ""
        op.execute(
            f"CREATE INDEX {name} ON task_execution_logs {definition.format(ops=ops)}{where}"
        )


UPSERT_KEY = "uq_task_logs_task_attempt"
PREFIX = "ix_task_logs_task_id_prefix"


def upgrade() -> None:
    _rebuild(partial=True)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"CREATE UNIQUE INDEX {UPSERT_KEY}_new ON task_execution_logs "
        "(task_id text_pattern_ops, attempt, created_at)"
    )
    op.execute(f"ALTER TABLE task_execution_logs DROP CONSTRAINT {UPSERT_KEY}")
    op.execute(f"ALTER INDEX {UPSERT_KEY}_new RENAME TO {UPSERT_KEY}")
    op.execute(f"DROP INDEX {PREFIX}")


def downgrade() -> None:
    _rebuild(partial=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE INDEX {PREFIX} ON task_execution_logs (task_id text_pattern_ops)")
    op.execute(f"DROP INDEX {UPSERT_KEY}")
    op.execute(
        f"ALTER TABLE task_execution_logs ADD CONSTRAINT {UPSERT_KEY} "
        "UNIQUE (task_id, attempt, created_at)"
    )
