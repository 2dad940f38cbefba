"""The Alembic migrations run forward and back on both databases, in TaskLens's own corner
of a database it shares with the app it watches."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from conftest import empty_postgres, fresh_sqlite
from sqlmodel import SQLModel
from support import API_TOKENS, TASKLENS, Stack, wait_for

from tasklens import migrate
from tasklens.tracking.database import OWN_NAMES, SQLITE_PREFIX, create_engine
from tasklens.tracking.models import (
    TASKLENS_TABLES,
    AlertFiring,
    AuditEntry,
    TaskDismissal,
    TaskOutcomeTotal,
)

EXPECTED_INDEXES = {
    "ix_task_logs_name_status_created",
    "ix_task_logs_created_at",
    "ix_task_logs_task_name",
    "ix_task_logs_status",
    "ix_task_logs_later_attempts",
}


def _inspect(url: str) -> tuple[set[str], set[str], list[list[str]]]:
    """TaskLens's tables, the log's indexes and unique keys, by their names as TaskLens
    spells them (SQLite's prefixed names read back unprefixed)."""

    async def run() -> tuple[set[str], set[str], list[list[str]]]:
        engine = create_engine(url)
        async with engine.connect() as conn:

            def look(sync_conn: sa.Connection) -> tuple[set[str], set[str], list[list[str]]]:
                inspector = sa.inspect(sync_conn)
                prefix = SQLITE_PREFIX if sync_conn.dialect.name == "sqlite" else ""
                present = set(inspector.get_table_names())
                tables = {n for n in TASKLENS_TABLES if prefix + n in present}
                log = prefix + "task_execution_logs"
                if log not in present:
                    return tables, set(), []
                indexes = {i["name"] for i in inspector.get_indexes(log)}
                uniques = [list(u["column_names"]) for u in inspector.get_unique_constraints(log)]
                # PostgreSQL's upsert key is a unique index since 0015 (text_pattern_ops)
                uniques += [
                    [str(c) for c in i["column_names"]]
                    for i in inspector.get_indexes(log)
                    if i["unique"]
                ]
                return tables, {str(i).removeprefix(prefix) for i in indexes}, uniques

            result = await conn.run_sync(look)
        await engine.dispose()
        return result

    return asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))  # already at head
    return fresh_sqlite(tmp_path / "m.db")


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    tables, indexes, uniques = _inspect(database_url)
    assert {"task_execution_logs", "api_tokens"} <= tables
    assert indexes >= EXPECTED_INDEXES
    # PostgreSQL's log is partitioned by created_at, which every unique key must then hold.
    upsert_key = ["task_id", "attempt"] + (["created_at"] if "postgres" in database_url else [])
    assert upsert_key in uniques

    migrate.downgrade(database_url, "base")
    tables, _, _ = _inspect(database_url)
    assert not {"task_execution_logs", "api_tokens"} & tables

    migrate.upgrade(database_url)
    assert _inspect(database_url)[1] >= EXPECTED_INDEXES


# --- TaskLens's own corner of a shared database (issue 13) ---------------------------------

HERE = Path(__file__).parent
# The tables the models declare are the ones head must have; the old layout (0005) had all
# but the Prometheus totals (0007).
HEAD_TABLES = set(SQLModel.metadata.tables)
# Tables made after 0009 (the revisions these tests start from or rename in place): a
# migration that adds a table adds it here.
LATER_TABLES = {AuditEntry.__tablename__, TaskDismissal.__tablename__, AlertFiring.__tablename__}
# Indexes on older tables made after 0009, likewise.
LATER_INDEXES = {"ix_task_logs_later_attempts"}
TABLES_0009 = HEAD_TABLES - LATER_TABLES
TABLES = TABLES_0009 - {TaskOutcomeTotal.__tablename__}  # the old layout's, before 0006
# The app's own database: its Alembic history and a table that happens to share a name.
USER_APP_SQL = (
    "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY)",
    "INSERT INTO alembic_version VALUES ('userapp_0042')",
    "CREATE TABLE task_execution_logs (id serial PRIMARY KEY, job text NOT NULL, ok boolean)",
    "INSERT INTO task_execution_logs (job, ok) VALUES ('nightly-export', true), "
    "('invoice-run', false)",
)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TASKLENS, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _sql(url: str, *statements: str) -> list[list[tuple[Any, ...]]]:
    """Each statement's rows, through a plain connection (search_path: the server's default,
    as the app's own connections have it)."""

    async def run() -> list[list[tuple[Any, ...]]]:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        try:
            return [[tuple(r) for r in await conn.fetch(s)] for s in statements]
        finally:
            await conn.close()

    return asyncio.run(run())


def _app_objects(url: str) -> list[list[tuple[Any, ...]]]:
    """Everything of the app's that TaskLens must leave alone."""
    return _sql(
        url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
        "SELECT version_num FROM public.alembic_version",
        "SELECT id, job, ok FROM public.task_execution_logs ORDER BY id",
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = 'task_execution_logs' ORDER BY 1",
    )


def _schema_tables(url: str, schema: str) -> set[str]:
    [rows] = _sql(
        url,
        f"SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
    )
    return {name for (name,) in rows}


# The search indexes migration 0015 makes partial, and the condition each gets.
PARTIAL_0015 = {
    "ix_task_logs_params_trgm": "status",
    "ix_task_logs_error_trgm": "error_message IS NOT NULL",
    "ix_task_logs_worker": "worker IS NOT NULL",
}


def _conditions(url: str) -> dict[str, str | None]:
    [rows] = _sql(
        url,
        "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = 'tasklens' AND c.relname IN {tuple(PARTIAL_0015)}",
    )
    return {name: condition for name, condition in rows}


def _upsert_key(url: str) -> list[tuple[str, str | None, str]]:
    """The log's indexes that start with task_id: name, constraint kind, first operator class."""
    [rows] = _sql(
        url,
        "SELECT c.relname, k.contype::text, o.opcname FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] "
        "JOIN pg_opclass o ON o.oid = i.indclass[0] "
        "LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid "
        "WHERE n.nspname = 'tasklens' AND t.relname = 'task_execution_logs' "
        "AND a.attname = 'task_id' ORDER BY 1",
    )
    return rows


def test_0015_makes_search_indexes_partial_and_the_upsert_key_find_prefixes_and_back(
    postgres_url: str,
) -> None:
    conditions = _conditions(postgres_url)
    assert set(conditions) == set(PARTIAL_0015)
    for name, part in PARTIAL_0015.items():
        assert part in (conditions[name] or ""), conditions
    assert "'success'" in (conditions["ix_task_logs_params_trgm"] or "")
    assert "'pending'" not in (conditions["ix_task_logs_params_trgm"] or "")
    assert _upsert_key(postgres_url) == [
        ("ix_task_logs_later_attempts", None, "text_ops"),  # 0016's
        ("uq_task_logs_task_attempt", None, "text_pattern_ops"),
    ]

    migrate.downgrade(postgres_url, "0014")
    assert _conditions(postgres_url) == dict.fromkeys(PARTIAL_0015)
    assert _upsert_key(postgres_url) == [
        ("ix_task_logs_task_id_prefix", None, "text_pattern_ops"),
        ("uq_task_logs_task_attempt", "u", "text_ops"),
    ]
    migrate.upgrade(postgres_url)
    assert _conditions(postgres_url) == conditions


def _later_attempts_index(url: str) -> list[tuple[Any, ...]]:
    [rows] = _sql(
        url,
        "SELECT pg_get_indexdef(i.indexrelid), pg_get_expr(i.indpred, i.indrelid) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'tasklens' AND c.relname = 'ix_task_logs_later_attempts'",
    )
    return rows


def test_0016_indexes_the_later_attempts_only_and_back(postgres_url: str) -> None:
    [(definition, condition)] = _later_attempts_index(postgres_url)
    assert "(task_id, attempt)" in definition
    assert condition == "(attempt > 1)"

    migrate.downgrade(postgres_url, "0015")
    assert _later_attempts_index(postgres_url) == []
    migrate.upgrade(postgres_url)
    assert _later_attempts_index(postgres_url) == [(definition, condition)]


def test_tasklens_joins_an_app_with_its_own_alembic_history_and_leaves_it_as_it_was(
    tmp_path: Path, redis_url: str
) -> None:
    """README "Add TaskLens to an existing app", step by step: the app's database has its own
    Alembic history (`userapp_0042`) and a `public.task_execution_logs` of its own; then
    `tasklens migrate`, `tasklens token`, the app's worker with the middleware line,
    `tasklens serve`, and the app's task on the dashboard; `tasklens migrate --downgrade
    base` takes TaskLens away again. The app's tables, rows and version never change."""
    url = empty_postgres()
    _sql(url, *USER_APP_SQL)
    before = _app_objects(url)
    env = {"TASKLENS_DATABASE_URL": url, "TASKLENS_REDIS_URL": redis_url, "TASKLENS_API_TOKENS": ""}

    migrated = _cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert _app_objects(url) == before
    assert _schema_tables(url, "tasklens") == HEAD_TABLES | {"alembic_version"}
    assert _sql(url, "SELECT version_num FROM tasklens.alembic_version") == [
        [(migrate.head_revision(),)]
    ]

    minted = _cli("token", "--name", "me", "--role", "viewer", env=env)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()

    app_env = {
        **os.environ,
        "PYTHONPATH": str(HERE),
        "THIRDPARTY_DATABASE_URL": url,
        "THIRDPARTY_REDIS_URL": redis_url,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "taskiq", "worker", "thirdparty_app:broker", "--workers", "1"],
        cwd=HERE,
        env=app_env,
        stdout=(tmp_path / "app-worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    stack = Stack(tmp_path, env)
    try:
        kicked = subprocess.run(
            [sys.executable, "-c", KICK_ADD],
            cwd=HERE,
            env=app_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert kicked.returncode == 0, kicked.stderr
        task_id = kicked.stdout.strip()

        api = stack.launch_api()
        api.wait_healthy(timeout=120)  # a loaded machine: CI runs many suites side by side
        seen: dict[str, Any] = {}

        def shown() -> bool:
            response = httpx.get(
                f"{api.base_url}/api/v1/tasks/{task_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            seen.update(response.json() if response.status_code == 200 else {})
            return seen.get("status") == "success"

        wait_for(shown, timeout=60, what=f"the app's task on the dashboard ({seen})")
        assert seen["task_name"] == "billing.add"
        assert seen["result"] == 5
    finally:
        stack.stop_all()
        worker.terminate()
        worker.wait(20)
    assert _app_objects(url) == before

    removed = _cli("migrate", "--downgrade", "base", env=env)
    assert removed.returncode == 0, removed.stderr
    assert _app_objects(url) == before
    assert _sql(url, "SELECT nspname FROM pg_namespace WHERE nspname = 'tasklens'") == [[]]


KICK_ADD = """
import asyncio
import thirdparty_app

async def main() -> None:
    await thirdparty_app.broker.startup()
    task = await thirdparty_app.add.kiq(2, 3)
    await thirdparty_app.broker.shutdown()
    print(task.task_id)

asyncio.run(main())
"""


def _old_layout(url: str, revision: str) -> None:
    """A database as TaskLens before 0006 left it: the migrations up to `revision` run as they
    ran then (tables in `public`, the version in `public.alembic_version`), with rows."""
    from alembic import command

    command.upgrade(migrate.alembic_config(url, legacy=True), revision)
    statements = [
        "INSERT INTO task_execution_logs (task_id, task_name, status, attempt, duration_ms, "
        "created_at, updated_at) SELECT 'old-' || i, 'demo.quick', 'success', 1, i, "
        "now() - i * interval '1 day', now() FROM generate_series(0, 19) AS i",
        "INSERT INTO api_tokens VALUES ('ci', 'viewer', repeat('a', 64), now())",
        "INSERT INTO analysis_results VALUES ('k1', 'github_user', 'octocat', '{}', '{}', "
        "'t1', now())",
    ]
    if revision >= "0004":
        statements.append(
            "INSERT INTO analysis_refreshes (key, requested_by, requested_at, task_id, "
            "deduplicated) VALUES ('k1', 'ci', now(), 't1', false)"
        )
    _sql(url, *statements)


def _counts(url: str, schema: str) -> dict[str, int]:
    tables = sorted(TABLES)
    rows = _sql(url, *(f"SELECT count(*) FROM {schema}.{t}" for t in tables))
    return {t: r[0][0] for t, r in zip(tables, rows, strict=True)}


def test_a_database_of_the_old_layout_moves_into_the_schema_with_every_row(
    tmp_path: Path,
) -> None:
    """Tables, day partitions and functions in `public` at 0005 move to the `tasklens`
    schema, rows and all; the version row moves too, and TaskLens runs on the moved tables
    (`tasklens serve` in the embedded mode on PostgreSQL: a new task logged, the old ones
    shown, the trigger-kept counts still those of the log)."""
    url = empty_postgres()
    _old_layout(url, "0005")
    before = _counts(url, "public")
    assert before["task_execution_logs"] == 20  # within the 30 days of retention
    partitions_before = _sql(
        url,
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.task_execution_logs'::regclass",
    )

    migrated = _cli("migrate", env={"TASKLENS_DATABASE_URL": url})
    assert migrated.returncode == 0, migrated.stderr
    assert _schema_tables(url, "public") == set()  # its alembic_version was TaskLens's only
    assert _schema_tables(url, "tasklens") == HEAD_TABLES | {"alembic_version"}
    assert _counts(url, "tasklens") == before
    assert (
        _sql(
            url,
            "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'tasklens.task_execution_logs'::regclass "
            "AND c.relnamespace = 'tasklens'::regnamespace",
        )
        == partitions_before
    )
    assert _sql(
        url,
        # TaskLens's own functions; pg_trgm's (migration 0009) are the extension's
        "SELECT proname FROM pg_proc p WHERE pronamespace = 'tasklens'::regnamespace "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d "
        "WHERE d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e') "
        "ORDER BY 1",
    ) == [
        [
            ("audit_log_refuse_change",),
            ("task_log_counts_apply",),
            ("task_outcome_totals_apply",),
            ("tasklens_drop_log_partitions",),
            ("tasklens_ensure_log_partitions",),
        ]
    ]

    stack = Stack(
        tmp_path,
        {"TASKLENS_DATABASE_URL": url, "TASKLENS_REDIS_URL": "", "TASKLENS_API_TOKENS": API_TOKENS},
    )
    try:
        api = stack.launch_api()
        api.wait_healthy(timeout=120)
        [task_id] = api.enqueue("demo.quick", n=1)
        api.wait_task(task_id, "success", timeout=60)
        assert api.task("old-3")["status"] == "success"
    finally:
        stack.stop_all()
    assert _sql(
        url,
        "SELECT (SELECT count(*) FROM tasklens.task_execution_logs), "
        "(SELECT sum(count) FROM tasklens.task_log_counts)",
    ) == [[(21, 21)]]
    # A change from outside TaskLens (a plain session: public on its search_path) still
    # keeps TaskLens's counts, in its schema.
    _sql(url, "DELETE FROM tasklens.task_execution_logs WHERE task_id = 'old-1'")
    assert _sql(url, "SELECT sum(count) FROM tasklens.task_log_counts") == [[(20,)]]


def test_an_older_database_of_the_old_layout_reaches_0005_where_it_is_then_moves(
    tmp_path: Path,
) -> None:
    """At 0003 (before the log was partitioned) the old layout is first brought to 0005 in
    `public`, then moved; here into a schema of another name (TASKLENS_DB_SCHEMA)."""
    url = empty_postgres()
    _old_layout(url, "0003")
    before = _counts_where_present(url)

    migrate.upgrade(url, schema="ops_tasklens")
    after = _counts(url, "ops_tasklens")
    assert {t: after[t] for t in before} == before
    assert _schema_tables(url, "public") == set()
    assert _sql(url, "SELECT version_num FROM ops_tasklens.alembic_version") == [
        [(migrate.head_revision(),)]
    ]


@pytest.mark.system  # runs `tasklens migrate` / `tasklens serve`
def test_a_database_of_the_old_layout_downgraded_before_any_upgrade_is_told_in_one_line(
    tmp_path: Path,
) -> None:
    """Its version is still in `public.alembic_version`: a downgrade from the new code says
    to migrate first, in one line, and changes nothing."""
    url = empty_postgres()
    _old_layout(url, "0005")
    before = _counts(url, "public")

    refused = _cli("migrate", "--downgrade", "0003", env={"TASKLENS_DATABASE_URL": url})
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        "tasklens: this database has TaskLens's tables in the layout before 0006 (at 0005"
    )
    assert "run `tasklens migrate` first" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _counts(url, "public") == before
    assert _sql(url, "SELECT version_num FROM public.alembic_version") == [[("0005",)]]


def _counts_where_present(url: str) -> dict[str, int]:
    [present] = _sql(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    tables = sorted({name for (name,) in present} & TABLES)
    rows = _sql(url, *(f"SELECT count(*) FROM public.{t}" for t in tables))
    return {t: r[0][0] for t, r in zip(tables, rows, strict=True)}


@pytest.mark.parametrize(
    "schema", ['x"; DROP SCHEMA public CASCADE; --', "public", "TaskLens", "pg_tasklens", ""]
)
def test_an_invalid_schema_stops_startup_naming_the_variable(schema: str) -> None:
    url = empty_postgres()
    refused = _cli("migrate", env={"TASKLENS_DATABASE_URL": url, "TASKLENS_DB_SCHEMA": schema})
    assert refused.returncode == 2
    assert refused.stderr.startswith("tasklens: invalid setting TASKLENS_DB_SCHEMA: ")
    assert "Traceback" not in refused.stderr
    assert _sql(url, "SELECT count(*) FROM pg_namespace WHERE nspname = 'public'") == [[(1,)]]


def test_sqlite_keeps_its_version_apart_from_the_apps(tmp_path: Path) -> None:
    """SQLite has no schemas: TaskLens's version is in `tasklens_alembic_version`, and the
    app's `alembic_version` stays as it was through upgrade and downgrade."""
    import sqlite3

    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('userapp_0042')")
        db.execute("CREATE TABLE invoices (id integer PRIMARY KEY, total real)")
        db.execute("INSERT INTO invoices (total) VALUES (9.5)")
    url = f"sqlite+aiosqlite:///{path}"

    def look() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], set[str]]:
        with sqlite3.connect(path) as db:
            return (
                db.execute("SELECT * FROM alembic_version").fetchall(),
                db.execute("SELECT * FROM invoices").fetchall(),
                {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")},
            )

    migrate.upgrade(url)
    versions, invoices, tables = look()
    assert versions == [("userapp_0042",)] and invoices == [(1, 9.5)]
    assert tables == {"alembic_version", "invoices", "tasklens_alembic_version"} | {
        SQLITE_PREFIX + t for t in HEAD_TABLES
    }
    with sqlite3.connect(path) as db:
        head = db.execute("SELECT version_num FROM tasklens_alembic_version").fetchall()
    assert head == [(migrate.head_revision(),)]

    migrate.downgrade(url, "base")
    assert look() == ([("userapp_0042",)], [(1, 9.5)], {"alembic_version", "invoices"})


# --- SQLite: TaskLens's names prefixed, beside the app's own --------------------------------

# The app's own file: its Alembic history, and objects that happen to bear TaskLens's
# unprefixed names (a table, an index and a trigger).
USER_APP_SQLITE = (
    "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY)",
    "INSERT INTO alembic_version VALUES ('userapp_0042')",
    "CREATE TABLE task_execution_logs (id integer PRIMARY KEY, job text NOT NULL UNIQUE, ok int)",
    "CREATE INDEX ix_task_logs_status ON task_execution_logs (ok)",
    "CREATE TABLE audit (job text)",
    "CREATE TRIGGER task_log_counts_insert AFTER INSERT ON task_execution_logs "
    "BEGIN INSERT INTO audit VALUES (NEW.job); END",
    "INSERT INTO task_execution_logs (job, ok) VALUES ('nightly-export', 1), ('invoice-run', 0)",
)
# Rows in every table of TaskLens, under the names it is given (plain or prefixed).
TASKLENS_ROWS = (
    "INSERT INTO {task_execution_logs} (task_id, task_name, status, attempt, duration_ms, "
    "created_at, updated_at) VALUES ('old-1', 'demo.quick', 'success', 1, 12.5, "
    "'2026-01-01 10:00:00.000000', '2026-01-01 10:00:00.000000'), ('old-2', 'demo.quick', "
    "'failed', 1, 40, '2026-01-02 11:00:00.000000', '2026-01-02 11:00:00.000000')",
    "INSERT INTO {api_tokens} VALUES ('ci', 'viewer', '" + "a" * 64 + "', '2026-01-01')",
    "INSERT INTO {analysis_results} VALUES ('k1', 'github_user', 'octocat', '{{}}', '{{}}', "
    "'t1', '2026-01-01')",
    "INSERT INTO {analysis_refreshes} (key, requested_by, requested_at, task_id, "
    "deduplicated) VALUES ('k1', 'ci', '2026-01-01', 't1', 0)",
)


def _sqlite(path: Path, *statements: str) -> list[list[tuple[Any, ...]]]:
    """Each statement's rows, through a plain sqlite3 connection (as the app's own)."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db, db:
        return [db.execute(s).fetchall() for s in statements]


def _sqlite_objects(path: Path) -> set[tuple[str, str, str]]:
    [rows] = _sqlite(path, "SELECT type, name, tbl_name FROM sqlite_master")
    return {(kind, name, table) for kind, name, table in rows}


def _user_app_state(path: Path) -> list[list[tuple[Any, ...]]]:
    return _sqlite(
        path,
        "SELECT type, name, sql FROM sqlite_master WHERE name IN ('alembic_version', "
        "'task_execution_logs', 'ix_task_logs_status', 'audit', 'task_log_counts_insert') "
        "ORDER BY name",
        "SELECT * FROM alembic_version",
        "SELECT * FROM task_execution_logs ORDER BY id",
        "SELECT * FROM audit",
    )


def _tasklens_rows(path: Path, prefix: str) -> dict[str, list[tuple[Any, ...]]]:
    tables = sorted(TABLES_0009)
    rows = _sqlite(path, *(f"SELECT * FROM {prefix}{t} ORDER BY 1, 2, 3" for t in tables))
    return dict(zip(tables, rows, strict=True))


@pytest.mark.system  # runs `tasklens migrate` / `tasklens serve`
def test_sqlite_tasklens_names_all_its_objects_apart_and_leaves_the_apps_namesakes_alone(
    tmp_path: Path,
) -> None:
    """`tasklens migrate` on an app's file that already has its own `task_execution_logs`
    (with an index and a trigger of TaskLens's names) and its own `alembic_version`: every
    object TaskLens makes is named `tasklens_…`, TaskLens's triggers count into its own
    tables, the embedded server runs on the file, and `--downgrade base` leaves the app's
    file exactly as it was."""
    path = tmp_path / "app.db"
    _sqlite(path, *USER_APP_SQLITE)
    before = _user_app_state(path)
    apps = _sqlite_objects(path)
    env = {"TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}

    migrated = _cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert _user_app_state(path) == before
    ours = _sqlite_objects(path) - apps
    named = {name for _, name, _ in ours if not name.startswith("sqlite_autoindex_")}
    assert named == {SQLITE_PREFIX + n for n in OWN_NAMES} | {"tasklens_alembic_version"}
    assert all(  # SQLite's own indexes of TaskLens's keys follow the tables' names
        name.startswith(("tasklens_", "sqlite_autoindex_tasklens_"))
        and table.startswith(SQLITE_PREFIX)
        for _, name, table in ours
    )
    assert _sqlite(path, "SELECT version_num FROM tasklens_alembic_version") == [
        [(migrate.head_revision(),)]
    ]

    # TaskLens's triggers keep its own counts and totals, none of the app's.
    _sqlite(path, *(s.format(**{t: SQLITE_PREFIX + t for t in TABLES}) for s in TASKLENS_ROWS))
    assert _sqlite(
        path,
        "SELECT task_name, status, count FROM tasklens_task_log_counts ORDER BY status",
        "SELECT status, count FROM tasklens_task_outcome_totals ORDER BY status",
    ) == [
        [("demo.quick", "failed", 1), ("demo.quick", "success", 1)],
        [("failed", 1), ("success", 1)],
    ]
    assert _user_app_state(path) == before

    # The embedded server runs on the file beside the app's namesakes.
    stack = Stack(tmp_path, {**env, "TASKLENS_REDIS_URL": "", "TASKLENS_API_TOKENS": API_TOKENS})
    try:
        api = stack.launch_api()
        api.wait_healthy(timeout=120)
        [task_id] = api.enqueue("demo.quick", n=1)
        api.wait_task(task_id, "success", timeout=60)
    finally:
        stack.stop_all()
    assert _sqlite(
        path, f"SELECT status FROM tasklens_task_execution_logs WHERE task_id = '{task_id}'"
    ) == [[("success",)]]
    assert _user_app_state(path) == before

    downgraded = _cli("migrate", "--downgrade", "base", env=env)
    assert downgraded.returncode == 0, downgraded.stderr
    assert _sqlite_objects(path) == apps
    assert _user_app_state(path) == before


@pytest.mark.system  # runs `tasklens migrate` / `tasklens serve`
def test_a_sqlite_file_of_the_old_layout_is_renamed_in_place_and_its_downgrade_restores_it(
    tmp_path: Path,
) -> None:
    """A file as TaskLens before 0008 left it (unprefixed names, at 0007): `tasklens
    migrate` renames its tables, indexes and triggers in place, rows and all, and the
    triggers go on counting; downgrading to 0007 gives back the very objects and rows an
    older TaskLens reads, and upgrading again renames them once more."""
    from alembic import command

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    command.upgrade(migrate.alembic_config(url, sqlite_plain=True), "0007")
    _sqlite(path, *(s.format(**{t: t for t in TABLES}) for s in TASKLENS_ROWS))
    old_objects = _sqlite_objects(path)
    assert ("table", "task_execution_logs", "task_execution_logs") in old_objects
    old_rows = _tasklens_rows(path, "")
    assert old_rows["task_log_counts"] and old_rows["task_outcome_totals"]

    migrated = _cli("migrate", env={"TASKLENS_DATABASE_URL": url})
    assert migrated.returncode == 0, migrated.stderr
    later = {SQLITE_PREFIX + t for t in LATER_TABLES}  # made new by later revisions
    later_indexes = {SQLITE_PREFIX + i for i in LATER_INDEXES}
    renamed = {o for o in _sqlite_objects(path) if o[2] not in later and o[1] not in later_indexes}
    assert renamed == {
        (kind, name, table)
        if table == "tasklens_alembic_version"
        else (kind, _prefixed_name(name), SQLITE_PREFIX + table)
        for kind, name, table in old_objects
    }
    assert _narrowed(_tasklens_rows(path, SQLITE_PREFIX), old_rows) == old_rows
    _sqlite(  # the renamed triggers count as they did: every column of the upsert
        path,
        "UPDATE tasklens_task_execution_logs SET status = 'success' WHERE task_id = 'old-2'",
    )
    assert _sqlite(
        path,
        "SELECT status, sum(count), sum(duration_count), sum(duration_sum) "
        "FROM tasklens_task_log_counts GROUP BY status",
        "SELECT status, sum(count) FROM tasklens_task_duration_histogram GROUP BY status",
        "SELECT status, sum(count), sum(duration_ms_sum) FROM tasklens_task_outcome_totals "
        "GROUP BY status",
    ) == [
        [("failed", 0, 0, 0.0), ("success", 2, 2, 52.5)],
        [("failed", 0), ("success", 4)],  # two grains
        [("failed", 1, 40.0), ("success", 2, 52.5)],
    ]

    before_downgrade = _tasklens_rows(path, SQLITE_PREFIX)
    migrate.downgrade(url, "0007")
    assert _sqlite_objects(path) == old_objects
    assert _sqlite(path, "SELECT version_num FROM tasklens_alembic_version") == [[("0007",)]]
    old_again = _tasklens_rows(path, "")
    assert old_again == _narrowed(before_downgrade, old_again)

    migrate.downgrade(url, "0003")  # the older revisions run under the plain names too
    assert {name for kind, name, _ in _sqlite_objects(path) if kind == "table"} == {
        "tasklens_alembic_version",
        "task_execution_logs",
        "api_tokens",
        "task_log_counts",
        "analysis_results",
    }
    migrate.upgrade(url)
    assert {name for kind, name, _ in _sqlite_objects(path) if kind == "table"} == {
        "tasklens_alembic_version"
    } | {SQLITE_PREFIX + t for t in HEAD_TABLES}
    assert _sqlite(path, "SELECT task_id FROM tasklens_task_execution_logs ORDER BY 1") == [
        [("old-1",), ("old-2",)]
    ]


def _narrowed(
    rows: dict[str, list[tuple[Any, ...]]], narrower: dict[str, list[tuple[Any, ...]]]
) -> dict[str, list[tuple[Any, ...]]]:
    """`rows` of the tables `narrower` has, in as many columns as its rows: a revision after
    the one compared with adds columns at the end (0012's `run_at`)."""
    return {
        t: [row[: len(narrower[t][0])] for row in rows[t]] if narrower[t] else rows[t]
        for t in narrower
    }


def _prefixed_name(name: str) -> str:
    if name.startswith("sqlite_autoindex_"):
        return "sqlite_autoindex_" + SQLITE_PREFIX + name.removeprefix("sqlite_autoindex_")
    return SQLITE_PREFIX + name


def test_a_sqlite_file_of_the_old_layout_before_0006_reaches_head_with_its_rows(
    tmp_path: Path,
) -> None:
    """Older still: at 0003, the version in the file's `alembic_version`. It is brought to
    0005 and 0007 under the plain names, then renamed; the old version table goes."""
    from alembic import command

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    command.upgrade(migrate.alembic_config(url, legacy=True), "0003")
    _sqlite(path, *(s.format(**{t: t for t in TABLES}) for s in TASKLENS_ROWS[:3]))
    before = _tasklens_rows_where_present(path)

    migrate.upgrade(url)
    assert _sqlite(path, "SELECT version_num FROM tasklens_alembic_version") == [
        [(migrate.head_revision(),)]
    ]
    after = _tasklens_rows(path, SQLITE_PREFIX)
    assert _narrowed(after, before) == before
    assert _sqlite(
        path,
        "SELECT status, count, duration_ms_sum FROM tasklens_task_outcome_totals ORDER BY 1",
    ) == [[("failed", 1, 40.0), ("success", 1, 12.5)]]  # counted from the log by 0007
    left = {name for _, name, _ in _sqlite_objects(path)}
    assert not left & (OWN_NAMES | {"alembic_version"})  # nothing unprefixed is left


def _tasklens_rows_where_present(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    [present] = _sqlite(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    tables = sorted({name for (name,) in present} & HEAD_TABLES)
    rows = _sqlite(path, *(f"SELECT * FROM {t} ORDER BY 1, 2, 3" for t in tables))
    return dict(zip(tables, rows, strict=True))


@pytest.mark.system  # runs `tasklens migrate` / `tasklens serve`
def test_a_downgrade_that_would_take_back_a_name_the_app_now_uses_is_refused(
    tmp_path: Path,
) -> None:
    """Below 0008 TaskLens's names are the plain ones: a downgrade there cannot proceed in a
    file where the app has since made its own `task_execution_logs`; it says so and leaves
    the file as it was (to base, it would not need the name and goes ahead)."""
    path = tmp_path / "app.db"
    env = {"TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}
    assert _cli("migrate", env=env).returncode == 0
    _sqlite(path, *USER_APP_SQLITE[2:4])
    before = _sqlite_objects(path)

    refused = _cli("migrate", "--downgrade", "0007", env=env)
    assert refused.returncode != 0
    assert "task_execution_logs" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _sqlite_objects(path) == before
    assert _sqlite(path, "SELECT version_num FROM tasklens_alembic_version") == [
        [(migrate.head_revision(),)]
    ]
