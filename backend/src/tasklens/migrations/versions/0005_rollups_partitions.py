"""Duration histograms next to the hourly counts; the log partitioned by day in PostgreSQL.

Revision ID: 0005
Revises: 0004

`task_duration_histogram` holds, per grain (1 = hour, 24 = day), bucket, task name, terminal
status and duration bin (`tasklens.rollups`), how many rows have a duration in that bin. It is
kept by the same triggers as `task_log_counts`, so metrics over 30 days read ~30 daily rows per
task and bin instead of every raw row.

PostgreSQL: `task_execution_logs` becomes a table partitioned by range of `created_at`, one
partition per UTC day (`task_execution_logs_pYYYYMMDD`) plus a default partition for rows no
day partition takes yet. Existing rows are copied over. The primary key is `(id, created_at)`
and the upsert key `(task_id, attempt, created_at)`: a partitioned table's unique keys must hold
the partition key. Two functions, safe to call from many processes at once (advisory lock):
`tasklens_ensure_log_partitions(first, last)` creates the day partitions of that range (moving
their rows out of the default partition), `tasklens_drop_log_partitions(keep_from,
failed_keep_from)` drops days before `keep_from` but keeps their failed rows (as a
`…_failed` partition) until `failed_keep_from`, taking their counts and histograms away itself
(a dropped table fires no trigger). SQLite keeps one table (TaskLens's names prefixed there,
`own_name`).
"""

import importlib
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from tasklens.rollups import bin_sql
from tasklens.tracking.database import own_name

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERMINAL = "('success', 'failed', 'cancelled')"
DAYS_AHEAD = 7

_PG_DELTAS = {
    "INSERT": "SELECT created_at, task_name, status, duration_ms, 1 AS sign FROM new_rows",
    "UPDATE": "SELECT created_at, task_name, status, duration_ms, 1 AS sign FROM new_rows "
    "UNION ALL SELECT created_at, task_name, status, duration_ms, -1 FROM old_rows",
    "DELETE": "SELECT created_at, task_name, status, duration_ms, -1 AS sign FROM old_rows",
}


def _pg_histogram(deltas: str) -> str:
    return f"""
        INSERT INTO task_duration_histogram AS h (grain, bucket, task_name, status, bin, count)
        SELECT g.grain,
               date_trunc(CASE g.grain WHEN 1 THEN 'hour' ELSE 'day' END, d.created_at, 'UTC'),
               d.task_name, d.status, {bin_sql("d.duration_ms", "postgresql")}, sum(d.sign)
        FROM ({deltas}) AS d CROSS JOIN (VALUES (1::smallint), (24::smallint)) AS g(grain)
        WHERE d.duration_ms IS NOT NULL AND d.status IN {TERMINAL}
        GROUP BY 1, 2, 3, 4, 5
        HAVING sum(d.sign) <> 0
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (grain, bucket, task_name, status, bin) DO UPDATE SET
            count = h.count + excluded.count;"""


def _pg_trigger_function(with_histogram: bool) -> str:
    counts = importlib.import_module("tasklens.migrations.versions.0002_task_log_counts")
    apply: Callable[[str], str] = counts._pg_apply
    branches = "\n".join(
        f"{'IF' if i == 0 else 'ELSIF'} TG_OP = '{operation}' THEN {apply(deltas)}"
        + (_pg_histogram(deltas) if with_histogram else "")
        for i, (operation, deltas) in enumerate(_PG_DELTAS.items())
    )
    return f"""
        CREATE OR REPLACE FUNCTION task_log_counts_apply() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
        {branches}
        END IF;
        RETURN NULL;
        END $$"""


def _pg_create_triggers() -> None:
    op.execute("""CREATE TRIGGER task_log_counts_insert AFTER INSERT ON task_execution_logs
        REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION task_log_counts_apply()""")
    op.execute("""CREATE TRIGGER task_log_counts_update AFTER UPDATE ON task_execution_logs
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION task_log_counts_apply()""")
    op.execute("""CREATE TRIGGER task_log_counts_delete AFTER DELETE ON task_execution_logs
        REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION task_log_counts_apply()""")


_COLUMNS_DDL = """
    id bigint NOT NULL DEFAULT nextval('task_execution_logs_id_seq'),
    task_id varchar(64) NOT NULL,
    task_name varchar(255) NOT NULL,
    status varchar(16) NOT NULL,
    params jsonb,
    queue varchar(255),
    attempt integer NOT NULL DEFAULT 1,
    worker varchar(255),
    progress double precision,
    progress_message text,
    result jsonb,
    started_at timestamptz,
    completed_at timestamptz,
    duration_ms double precision,
    error_message text,
    error_traceback text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL"""
_COLUMN_NAMES = (
    "id, task_id, task_name, status, params, queue, attempt, worker, progress, "
    "progress_message, result, started_at, completed_at, duration_ms, error_message, "
    "error_traceback, created_at, updated_at"
)
# Every history filter has an index ending in (created_at, id), the page order: a page's
# position is found by an index-only scan, and only its own rows are read from the table.
_INDEXES = {
    "ix_task_logs_name_status_created": "task_name, status, created_at, id",
    "ix_task_logs_created_at": "created_at, id",
    "ix_task_logs_task_name": "task_name, created_at, id",
    "ix_task_logs_status": "status, created_at, id",
}
_INDEXES_0001 = {
    "ix_task_logs_name_status_created": "task_name, status, created_at",
    "ix_task_logs_created_at": "created_at",
    "ix_task_logs_task_name": "task_name",
    "ix_task_logs_status": "status",
}

_ENSURE_PARTITIONS = """
CREATE OR REPLACE FUNCTION tasklens_ensure_log_partitions(first_day date, last_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    part text;
    lo timestamptz;
    hi timestamptz;
    created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tasklens_log_partitions'));
    FOR day IN SELECT d::date FROM generate_series(first_day, last_day, interval '1 day') AS d
    LOOP
        part := 'task_execution_logs_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(part) IS NOT NULL OR to_regclass(part || '_failed') IS NOT NULL;
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I (LIKE task_execution_logs INCLUDING DEFAULTS)', part);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK '
                       '(created_at >= %L AND created_at < %L)', part, part || '_range', lo, hi);
        -- Rows that landed in the default partition meanwhile move to their day (no trigger
        -- fires: they stay in the log, so the counts stay right).
        EXECUTE format('WITH moved AS (DELETE FROM task_execution_logs_default '
                       'WHERE created_at >= %L AND created_at < %L RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE task_execution_logs ATTACH PARTITION %I '
                       'FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_range');
        created := created + 1;
    END LOOP;
    RETURN created;
END $$"""

_DROP_PARTITIONS = """
CREATE OR REPLACE FUNCTION tasklens_drop_log_partitions(keep_from timestamptz,
                                                        failed_keep_from timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part text;
    day date;
    lo timestamptz;
    hi timestamptz;
    changed integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('tasklens_log_partitions'));
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'task_execution_logs'::regclass
          AND c.relname ~ '^task_execution_logs_p[0-9]{8}(_failed)?$'
        ORDER BY c.relname
    LOOP
        day := to_date(substr(part, 22, 8), 'YYYYMMDD');
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        IF hi <= failed_keep_from THEN
            EXECUTE format('DROP TABLE %I', part);
            DELETE FROM task_log_counts WHERE bucket >= lo AND bucket < hi;
            DELETE FROM task_duration_histogram WHERE bucket >= lo AND bucket < hi;
            changed := changed + 1;
        ELSIF hi <= keep_from AND part !~ '_failed$' THEN
            EXECUTE format('CREATE TABLE %I (LIKE task_execution_logs INCLUDING DEFAULTS)',
                           part || '_failed');
            EXECUTE format('INSERT INTO %I SELECT * FROM %I WHERE status = ''failed''',
                           part || '_failed', part);
            EXECUTE format('DROP TABLE %I', part);
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK '
                           '(created_at >= %L AND created_at < %L)',
                           part || '_failed', part || '_range', lo, hi);
            EXECUTE format('ALTER TABLE task_execution_logs ATTACH PARTITION %I '
                           'FOR VALUES FROM (%L) TO (%L)', part || '_failed', lo, hi);
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part || '_failed',
                           part || '_range');
            DELETE FROM task_log_counts
            WHERE bucket >= lo AND bucket < hi AND status <> 'failed';
            DELETE FROM task_duration_histogram
            WHERE bucket >= lo AND bucket < hi AND status <> 'failed';
            changed := changed + 1;
        END IF;
    END LOOP;
    -- Old rows in the default partition go by a DELETE through the parent: the triggers
    -- adjust the counts.
    DELETE FROM task_execution_logs
    WHERE tableoid = 'task_execution_logs_default'::regclass
      AND (created_at < failed_keep_from OR (created_at < keep_from AND status <> 'failed'));
    RETURN changed;
END $$"""


def _pg_partition_log() -> None:
    bind = op.get_bind()
    oldest = bind.execute(sa.text("SELECT min(created_at) FROM task_execution_logs")).scalar()
    today = datetime.now(UTC).date()
    first: date = oldest.astimezone(UTC).date() if oldest is not None else today
    first = min(first, today - timedelta(days=1))
    op.execute(
        f"CREATE TABLE task_execution_logs_new ({_COLUMNS_DDL}) PARTITION BY RANGE (created_at)"
    )
    op.execute("ALTER SEQUENCE task_execution_logs_id_seq OWNED BY task_execution_logs_new.id")
    op.execute(
        "CREATE TABLE task_execution_logs_default PARTITION OF task_execution_logs_new DEFAULT"
    )
    day = first
    while day <= today + timedelta(days=DAYS_AHEAD):
        op.execute(
            f"CREATE TABLE task_execution_logs_p{day:%Y%m%d} PARTITION OF task_execution_logs_new "
            f"FOR VALUES FROM ('{day.isoformat()} 00:00:00+00') "
            f"TO ('{(day + timedelta(days=1)).isoformat()} 00:00:00+00')"
        )
        day += timedelta(days=1)
    op.execute(
        f"INSERT INTO task_execution_logs_new ({_COLUMN_NAMES}) "
        f"SELECT {_COLUMN_NAMES} FROM task_execution_logs"
    )
    op.execute("DROP TABLE task_execution_logs")  # its triggers, indexes and keys with it
    op.execute("ALTER TABLE task_execution_logs_new RENAME TO task_execution_logs")
    op.execute(
        "ALTER TABLE task_execution_logs ADD CONSTRAINT task_execution_logs_pkey "
        "PRIMARY KEY (id, created_at)"
    )
    op.execute(
        "ALTER TABLE task_execution_logs ADD CONSTRAINT uq_task_logs_task_attempt "
        "UNIQUE (task_id, attempt, created_at)"
    )
    for name, columns in _INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON task_execution_logs ({columns})")
    op.execute(_ENSURE_PARTITIONS)
    op.execute(_DROP_PARTITIONS)


def _pg_unpartition_log() -> None:
    op.execute("DROP FUNCTION tasklens_drop_log_partitions(timestamptz, timestamptz)")
    op.execute("DROP FUNCTION tasklens_ensure_log_partitions(date, date)")
    op.execute(f"CREATE TABLE task_execution_logs_flat ({_COLUMNS_DDL})")
    op.execute("ALTER SEQUENCE task_execution_logs_id_seq OWNED BY task_execution_logs_flat.id")
    op.execute(
        f"INSERT INTO task_execution_logs_flat ({_COLUMN_NAMES}) "
        f"SELECT {_COLUMN_NAMES} FROM task_execution_logs"
    )
    op.execute("DROP TABLE task_execution_logs")
    op.execute("ALTER TABLE task_execution_logs_flat RENAME TO task_execution_logs")
    op.execute("ALTER TABLE task_execution_logs ADD PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE task_execution_logs ADD CONSTRAINT uq_task_logs_task_attempt "
        "UNIQUE (task_id, attempt)"
    )
    for name, columns in _INDEXES_0001.items():
        op.execute(f"CREATE INDEX {name} ON task_execution_logs ({columns})")


_SQLITE_GRAINS = {
    1: "substr({row}.created_at, 1, 13) || ':00:00.000000'",
    24: "substr({row}.created_at, 1, 10) || ' 00:00:00.000000'",
}


def _n(name: str) -> str:
    return own_name(name, op.get_bind().dialect)


def _sqlite_add(row: str) -> str:
    return "".join(
        f"""
        INSERT INTO {_n("task_duration_histogram")}
            (grain, bucket, task_name, status, bin, count)
        VALUES ({grain}, {bucket.format(row=row)}, {row}.task_name, {row}.status,
                {bin_sql(f"{row}.duration_ms", "sqlite")}, 1)
        ON CONFLICT (grain, bucket, task_name, status, bin) DO UPDATE SET count = count + 1;"""
        for grain, bucket in _SQLITE_GRAINS.items()
    )


def _sqlite_remove(row: str) -> str:
    return "".join(
        f"""
        UPDATE {_n("task_duration_histogram")} SET count = count - 1
        WHERE grain = {grain} AND bucket = {bucket.format(row=row)}
          AND task_name = {row}.task_name AND status = {row}.status
          AND bin = {bin_sql(f"{row}.duration_ms", "sqlite")};"""
        for grain, bucket in _SQLITE_GRAINS.items()
    )


def _counted(row: str) -> str:
    return f"{row}.duration_ms IS NOT NULL AND {row}.status IN {TERMINAL}"


_SQLITE_TRIGGERS = (
    "task_duration_histogram_insert",
    "task_duration_histogram_update_old",
    "task_duration_histogram_update_new",
    "task_duration_histogram_delete",
)


def _sqlite_triggers() -> dict[str, str]:
    log = _n("task_execution_logs")
    update = f"AFTER UPDATE OF created_at, task_name, status, duration_ms ON {log}"
    bodies = (
        f"AFTER INSERT ON {log} WHEN {_counted('NEW')} BEGIN {_sqlite_add('NEW')} END",
        f"{update} WHEN {_counted('OLD')} BEGIN {_sqlite_remove('OLD')} END",
        f"{update} WHEN {_counted('NEW')} BEGIN {_sqlite_add('NEW')} END",
        f"AFTER DELETE ON {log} WHEN {_counted('OLD')} BEGIN {_sqlite_remove('OLD')} END",
    )
    return {_n(name): body for name, body in zip(_SQLITE_TRIGGERS, bodies, strict=True)}


def _sqlite_indexes(indexes: dict[str, str]) -> None:
    for name, columns in indexes.items():
        op.execute(f"DROP INDEX {_n(name)}")
        op.execute(f"CREATE INDEX {_n(name)} ON {_n('task_execution_logs')} ({columns})")


def upgrade() -> None:
    op.create_table(
        "task_duration_histogram",
        sa.Column("grain", sa.SmallInteger, nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("bin", sa.SmallInteger, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("grain", "bucket", "task_name", "status", "bin"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _pg_partition_log()
        op.execute(_pg_trigger_function(with_histogram=True))
        _pg_create_triggers()
        op.execute(
            _pg_histogram(
                "SELECT created_at, task_name, status, duration_ms, 1 AS sign "
                "FROM task_execution_logs"
            )
        )
        return
    _sqlite_indexes(_INDEXES)
    for name, body in _sqlite_triggers().items():
        op.execute(f"CREATE TRIGGER {name} {body}")
    for grain, bucket in _SQLITE_GRAINS.items():
        op.execute(f"""
            INSERT INTO {_n("task_duration_histogram")}
                (grain, bucket, task_name, status, bin, count)
            SELECT {grain}, {bucket.format(row="l")}, task_name, status,
                   {bin_sql("l.duration_ms", "sqlite")}, count(*)
            FROM {_n("task_execution_logs")} AS l WHERE {_counted("l")}
            GROUP BY 1, 2, 3, 4, 5""")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _pg_unpartition_log()
        op.execute(_pg_trigger_function(with_histogram=False))
        _pg_create_triggers()
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {_n(name)}")
        _sqlite_indexes(_INDEXES_0001)
    op.drop_table("task_duration_histogram")
