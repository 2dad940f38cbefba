"""Monotonic outcome totals for Prometheus counters: never decreased, not even by retention.

Revision ID: 0007
Revises: 0006

`task_outcome_totals` holds, per task name, terminal status and duration doubling (four
`tasklens.rollups` bins; -1 for a row without a duration), how many times a log row became that
terminal status and the sum of their durations. Unlike `task_log_counts` and
`task_duration_histogram`, which follow the rows (a deleted or dropped row takes its counts
with it), nothing here is ever subtracted: a Prometheus counter must not go down, and
retention would make it. A row counts when it is inserted terminal or updated from another
status to a terminal one; a terminal row whose status is corrected later (a late `success`
over the reaper's `failed`) counts under both. Rewriting a row with the same status (a
drained spill written twice) counts nothing. The totals start from the terminal rows the
log holds at upgrade. The table is tiny (task names x 3 statuses x at most 31 bins), so a
scrape never reads the log. On SQLite TaskLens's names are prefixed (`own_name`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from tasklens.rollups import bin_sql
from tasklens.tracking.database import own_name

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERMINAL = "('success', 'failed', 'cancelled')"
NO_DURATION_BIN = -1


def _bin(column: str, dialect: str) -> str:
    """The doubling a duration falls in: j holds [2^(j-1), 2^j) ms, i.e. rollup bins
    4j-3 … 4j (0: under 1 ms; 29: 2^28 ms and up), as coarse as the `le` edges /metrics
    shows, so a flush touches 4x fewer rows. SQLite's CASE ladder sends NULL to the top
    bin: rows without a duration get their own."""
    fine = bin_sql(column, dialect)
    return f"CASE WHEN {column} IS NULL THEN {NO_DURATION_BIN} ELSE ({fine} + 3) / 4 END"


def _pg_add(entered: str) -> str:
    return f"""
        INSERT INTO task_outcome_totals AS t (task_name, status, bin, count, duration_ms_sum)
        SELECT e.task_name, e.status, {_bin("e.duration_ms", "postgresql")}, count(*),
               coalesce(sum(e.duration_ms), 0)
        FROM ({entered}) AS e
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        ON CONFLICT (task_name, status, bin) DO UPDATE SET count = t.count + excluded.count,
            duration_ms_sum = t.duration_ms_sum + excluded.duration_ms_sum;"""


_PG_FUNCTION = f"""
    CREATE OR REPLACE FUNCTION task_outcome_totals_apply() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
    IF TG_OP = 'INSERT' THEN {
    _pg_add(f"SELECT task_name, status, duration_ms FROM new_rows WHERE status IN {TERMINAL}")
}
    ELSIF TG_OP = 'UPDATE' THEN {
    _pg_add(
        "SELECT n.task_name, n.status, n.duration_ms FROM new_rows AS n "
        "JOIN old_rows AS o ON o.id = n.id AND o.created_at = n.created_at "
        f"WHERE n.status IN {TERMINAL} AND n.status <> o.status"
    )
}
    END IF;
    RETURN NULL;
    END $$"""


def _n(name: str) -> str:
    return own_name(name, op.get_bind().dialect)


def _sqlite_add(row: str) -> str:
    return f"""
        INSERT INTO {_n("task_outcome_totals")} (task_name, status, bin, count, duration_ms_sum)
        VALUES ({row}.task_name, {row}.status, {_bin(f"{row}.duration_ms", "sqlite")}, 1,
                coalesce({row}.duration_ms, 0))
        ON CONFLICT (task_name, status, bin) DO UPDATE SET count = count + 1,
            duration_ms_sum = duration_ms_sum + excluded.duration_ms_sum;"""


_TRIGGERS = ("task_outcome_totals_insert", "task_outcome_totals_update")


def _sqlite_triggers() -> dict[str, str]:
    log = _n("task_execution_logs")
    insert, update = _TRIGGERS
    return {
        _n(insert): f"AFTER INSERT ON {log} "
        f"WHEN NEW.status IN {TERMINAL} BEGIN {_sqlite_add('NEW')} END",
        _n(update): f"AFTER UPDATE OF status ON {log} "
        f"WHEN NEW.status IN {TERMINAL} AND NEW.status <> OLD.status "
        f"BEGIN {_sqlite_add('NEW')} END",
    }


def upgrade() -> None:
    op.create_table(
        "task_outcome_totals",
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bin", sa.SmallInteger, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("duration_ms_sum", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("task_name", "status", "bin"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_FUNCTION)
        # Pinned as 0006 pins the others: a psql session with another search_path that
        # changes the log still counts into TaskLens's schema.
        schema = context.config.attributes["schema"]
        op.execute(f'ALTER FUNCTION task_outcome_totals_apply() SET search_path = "{schema}"')
        op.execute("""CREATE TRIGGER task_outcome_totals_insert AFTER INSERT
            ON task_execution_logs REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION task_outcome_totals_apply()""")
        op.execute("""CREATE TRIGGER task_outcome_totals_update AFTER UPDATE
            ON task_execution_logs REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION task_outcome_totals_apply()""")
    else:
        for name, body in _sqlite_triggers().items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(f"""
        INSERT INTO {_n("task_outcome_totals")} (task_name, status, bin, count, duration_ms_sum)
        SELECT task_name, status, {_bin("l.duration_ms", dialect)}, count(*),
               coalesce(sum(duration_ms), 0)
        FROM {_n("task_execution_logs")} AS l WHERE status IN {TERMINAL}
        GROUP BY 1, 2, 3""")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in _TRIGGERS:  # the same names on both; SQLite's are prefixed (own_name)
        op.execute(f"DROP TRIGGER {_n(name)}" + (" ON task_execution_logs" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION task_outcome_totals_apply()")
    op.drop_table("task_outcome_totals")
