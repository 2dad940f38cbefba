"""Hourly counts per task name and status, kept by triggers, for exact totals and fast pages.

Revision ID: 0002
Revises: 0001

Every write to task_execution_logs (insert, status change, delete) adjusts the count of its
hour bucket in the same transaction, so the counts are always the log's. History totals and
the position of any page come from here instead of count(*) and OFFSET over millions of rows.
PostgreSQL uses statement-level triggers over transition tables (one aggregated upsert per
batch); SQLite, row-level ones, under TaskLens's prefixed names (`own_name`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tasklens.tracking.database import own_name

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_DELTAS = {
    "INSERT": "SELECT created_at, task_name, status, duration_ms, 1 AS sign FROM new_rows",
    "UPDATE": "SELECT created_at, task_name, status, duration_ms, 1 AS sign FROM new_rows "
    "UNION ALL SELECT created_at, task_name, status, duration_ms, -1 FROM old_rows",
    "DELETE": "SELECT created_at, task_name, status, duration_ms, -1 AS sign FROM old_rows",
}


def _pg_apply(deltas: str) -> str:
    return f"""
        INSERT INTO task_log_counts AS c
            (bucket, task_name, status, count, duration_count, duration_sum)
        SELECT date_trunc('hour', created_at, 'UTC'), task_name, status, sum(sign),
               sum(CASE WHEN duration_ms IS NULL THEN 0 ELSE sign END),
               sum(coalesce(duration_ms, 0) * sign)
        FROM ({deltas}) AS d
        GROUP BY 1, 2, 3
        HAVING sum(sign) <> 0 OR sum(coalesce(duration_ms, 0) * sign) <> 0
        ORDER BY 1, 2, 3
        ON CONFLICT (bucket, task_name, status) DO UPDATE SET
            count = c.count + excluded.count,
            duration_count = c.duration_count + excluded.duration_count,
            duration_sum = c.duration_sum + excluded.duration_sum;"""


_SQLITE_BUCKET = "substr({row}.created_at, 1, 13) || ':00:00.000000'"


def _n(name: str) -> str:
    return own_name(name, op.get_bind().dialect)


def _sqlite_add(row: str) -> str:
    return f"""
        INSERT INTO {_n("task_log_counts")}
            (bucket, task_name, status, count, duration_count, duration_sum)
        VALUES ({_SQLITE_BUCKET.format(row=row)}, {row}.task_name, {row}.status, 1,
                {row}.duration_ms IS NOT NULL, coalesce({row}.duration_ms, 0))
        ON CONFLICT (bucket, task_name, status) DO UPDATE SET
            count = count + 1,
            duration_count = duration_count + excluded.duration_count,
            duration_sum = duration_sum + excluded.duration_sum;"""


def _sqlite_remove(row: str) -> str:
    return f"""
        UPDATE {_n("task_log_counts")} SET count = count - 1,
            duration_count = duration_count - ({row}.duration_ms IS NOT NULL),
            duration_sum = duration_sum - coalesce({row}.duration_ms, 0)
        WHERE bucket = {_SQLITE_BUCKET.format(row=row)} AND task_name = {row}.task_name
          AND status = {row}.status;"""


def upgrade() -> None:
    op.create_table(
        "task_log_counts",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("duration_count", sa.BigInteger, nullable=False),
        sa.Column("duration_sum", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("bucket", "task_name", "status"),
    )
    if op.get_bind().dialect.name == "postgresql":
        branches = "\n".join(
            f"{'IF' if i == 0 else 'ELSIF'} TG_OP = '{operation}' THEN {_pg_apply(deltas)}"
            for i, (operation, deltas) in enumerate(_PG_DELTAS.items())
        )
        op.execute(f"""
            CREATE FUNCTION task_log_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
            {branches}
            END IF;
            RETURN NULL;
            END $$""")
        op.execute("""CREATE TRIGGER task_log_counts_insert AFTER INSERT ON task_execution_logs
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION task_log_counts_apply()""")
        op.execute("""CREATE TRIGGER task_log_counts_update AFTER UPDATE ON task_execution_logs
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION task_log_counts_apply()""")
        op.execute("""CREATE TRIGGER task_log_counts_delete AFTER DELETE ON task_execution_logs
            REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION task_log_counts_apply()""")
        op.execute(
            _pg_apply(
                "SELECT created_at, task_name, status, duration_ms, 1 AS sign "
                "FROM task_execution_logs"
            )
        )
    else:
        log = _n("task_execution_logs")
        op.execute(f"""CREATE TRIGGER {_n("task_log_counts_insert")} AFTER INSERT ON {log}
            BEGIN {_sqlite_add("NEW")} END""")
        op.execute(f"""CREATE TRIGGER {_n("task_log_counts_update")} AFTER UPDATE OF created_at,
            task_name, status, duration_ms ON {log}
            BEGIN {_sqlite_remove("OLD")} {_sqlite_add("NEW")} END""")
        op.execute(f"""CREATE TRIGGER {_n("task_log_counts_delete")} AFTER DELETE ON {log}
            BEGIN {_sqlite_remove("OLD")} END""")
        op.execute(f"""
            INSERT INTO {_n("task_log_counts")}
                (bucket, task_name, status, count, duration_count, duration_sum)
            SELECT {_SQLITE_BUCKET.format(row="l")}, task_name, status, count(*),
                   count(duration_ms), coalesce(sum(duration_ms), 0)
            FROM {log} AS l GROUP BY 1, 2, 3""")


def downgrade() -> None:
    for trigger in ("insert", "update", "delete"):
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER task_log_counts_{trigger} ON task_execution_logs")
        else:
            op.execute(f"DROP TRIGGER {_n(f'task_log_counts_{trigger}')}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION task_log_counts_apply()")
    op.drop_table("task_log_counts")
