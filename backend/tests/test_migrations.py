"""The Alembic migrations run forward and back on both databases, in TaskLens's own corner
of a database it shares with the app it watches."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from conftest import empty_postgres
from support import API_TOKENS, TASKLENS, Stack, wait_for

from tasklens import migrate
from tasklens.tracking.database import create_engine

EXPECTED_INDEXES = {
    "ix_task_logs_name_status_created",
    "ix_task_logs_created_at",
    "ix_task_logs_task_name",
    "ix_task_logs_status",
}


def _inspect(url: str) -> tuple[set[str], set[str], list[list[str]]]:
    async def run() -> tuple[set[str], set[str], list[list[str]]]:
        engine = create_engine(url)
        async with engine.connect() as conn:

            def look(sync_conn: sa.Connection) -> tuple[set[str], set[str], list[list[str]]]:
                inspector = sa.inspect(sync_conn)
                tables = set(inspector.get_table_names())
                if "task_execution_logs" not in tables:
                    return tables, set(), []
                indexes = {i["name"] for i in inspector.get_indexes("task_execution_logs")}
                uniques = [
                    list(u["column_names"])
                    for u in inspector.get_unique_constraints("task_execution_logs")
                ]
                return tables, {str(i) for i in indexes}, uniques

            result = await conn.run_sync(look)
        await engine.dispose()
        return result

    return asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))  # already at head
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    migrate.upgrade(url)
    return url


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
TABLES = {
    "task_execution_logs",
    "task_log_counts",
    "task_duration_histogram",
    "analysis_results",
    "analysis_refreshes",
    "api_tokens",
}  # those of the old layout (0005); head adds the Prometheus totals (0007)
HEAD_TABLES = TABLES | {"task_outcome_totals"}
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
    assert HEAD_TABLES | {"tasklens_alembic_version"} <= tables
    with sqlite3.connect(path) as db:
        head = db.execute("SELECT version_num FROM tasklens_alembic_version").fetchall()
    assert head == [(migrate.head_revision(),)]

    migrate.downgrade(url, "base")
    assert look() == ([("userapp_0042",)], [(1, 9.5)], {"alembic_version", "invoices"})


def test_a_sqlite_file_of_the_old_layout_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/old.db"
    from alembic import command

    command.upgrade(migrate.alembic_config(url, legacy=True), "0005")
    import sqlite3

    with sqlite3.connect(tmp_path / "old.db") as db:
        db.execute("INSERT INTO api_tokens VALUES ('ci', 'viewer', ?, '2026-01-01')", ("a" * 64,))
    migrate.upgrade(url)
    with sqlite3.connect(tmp_path / "old.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "alembic_version" not in tables
        assert db.execute("SELECT version_num FROM tasklens_alembic_version").fetchall() == [
            (migrate.head_revision(),)
        ]
        assert db.execute("SELECT name FROM api_tokens").fetchall() == [("ci",)]
