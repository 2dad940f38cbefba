"""TaskLens's tables move into its own PostgreSQL schema, apart from the app's.

Revision ID: 0006
Revises: 0005

A database migrated by the old layout has its tables, the log's day partitions and the
partition and counting functions in `public`. They move with `ALTER … SET SCHEMA`, which keeps
their rows, indexes, constraints, triggers and owned sequences; partitions are tables of their
own and move one by one. (Its version row was moved before, by migrate.adopt_legacy.) A
database whose tables 0001-0005 already made in the schema has nothing to move.

The three functions get `search_path` pinned to the schema: the counting triggers then write
TaskLens's counts whoever changes the log (a DBA's psql session has `public` on its path, where
the app may have a `task_log_counts` of its own).

Downgrading leaves the tables where they are: older revisions run in the schema too.
SQLite has no schemas: nothing to do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SCHEMA = "public"
TABLES = (
    "task_execution_logs",
    "task_log_counts",
    "task_duration_histogram",
    "analysis_results",
    "analysis_refreshes",
    "api_tokens",
)
FUNCTIONS = (
    "task_log_counts_apply()",
    "tasklens_ensure_log_partitions(date, date)",
    "tasklens_drop_log_partitions(timestamptz, timestamptz)",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = context.config.attributes["schema"]
    if not bind.scalar(sa.text("SELECT to_regclass(:t)"), {"t": f'"{schema}".task_execution_logs'}):
        _move_from_public(schema)
    for function in FUNCTIONS:
        op.execute(f'ALTER FUNCTION "{schema}".{function} SET search_path = "{schema}"')


def _move_from_public(schema: str) -> None:
    bind = op.get_bind()
    partitions = bind.scalars(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"
        ),
        {"t": f"{OLD_SCHEMA}.task_execution_logs"},
    ).all()
    for table in (*partitions, *TABLES):
        op.execute(f'ALTER TABLE {OLD_SCHEMA}."{table}" SET SCHEMA "{schema}"')
    for function in FUNCTIONS:
        op.execute(f'ALTER FUNCTION {OLD_SCHEMA}.{function} SET SCHEMA "{schema}"')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    schema = context.config.attributes["schema"]
    for function in FUNCTIONS:
        op.execute(f'ALTER FUNCTION "{schema}".{function} RESET search_path')
