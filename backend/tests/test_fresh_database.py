"""The tests' own fixture: `fresh_postgres()` hands out a database as good as a newly
migrated one, whether it empties the last one in place or rebuilds it (pg_reset.py)."""

from __future__ import annotations

import asyncio

import asyncpg
from conftest import fresh_postgres


def _sql(url: str, *statements: str) -> list[list[asyncpg.Record]]:
    async def run() -> list[list[asyncpg.Record]]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return [await conn.fetch(statement) for statement in statements]
        finally:
            await conn.close()

    return asyncio.run(run())


def _state(url: str) -> tuple[int, int, list[str], list[str]]:
    """Rows in the log (and in the hourly counts its triggers keep), tokens, Alembic's
    version, the app's tables."""
    logs, tokens, versions, public = _sql(
        url,
        "SELECT (SELECT count(*) FROM tasklens.task_execution_logs)"
        " + (SELECT count(*) FROM tasklens.task_log_counts)",
        "SELECT count(*) FROM tasklens.api_tokens",
        "SELECT version_num FROM tasklens.alembic_version",
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    )
    return logs[0][0], tokens[0][0], [r[0] for r in versions], [r[0] for r in public]


INSERT_LOG = (
    "INSERT INTO tasklens.task_execution_logs (task_id, task_name, status, attempt, created_at, "
    "updated_at) "
    "VALUES ('t1', 'job', 'pending', 1, now(), now()) RETURNING id"
)
INSERT_TOKEN = (
    "INSERT INTO tasklens.api_tokens (name, role, token_sha256, created_at) "
    "VALUES ('ops', 'operator', 'x', now())"
)


def test_rows_and_ids_of_the_last_test_are_gone() -> None:
    url = fresh_postgres()
    migrated = _state(url)
    [[first]] = _sql(url, INSERT_LOG)[:1]
    _sql(url, INSERT_LOG.replace("'t1'", "'t2'"), INSERT_TOKEN)

    again = fresh_postgres()

    assert again == url
    assert _state(again) == (0, 0, migrated[2], [])
    [[restarted]] = _sql(again, INSERT_LOG)
    assert restarted["id"] == first["id"]  # sequences start over, as in a new database


def test_a_schema_the_last_test_changed_is_rebuilt() -> None:
    url = fresh_postgres()
    head = _state(url)[2]
    _sql(
        url,
        "CREATE TABLE public.app_orders (id int)",
        "ALTER TABLE tasklens.api_tokens ADD COLUMN note text",
        "UPDATE tasklens.alembic_version SET version_num = 'elsewhere'",
    )

    again = fresh_postgres()

    assert _state(again) == (0, 0, head, [])
    [columns] = _sql(
        again,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'tasklens' AND table_name = 'api_tokens' AND column_name = 'note'",
    )
    assert columns == []


def test_partitions_a_test_added_are_dropped_and_the_database_kept() -> None:
    url = fresh_postgres()
    _sql(
        url,
        "CREATE TABLE tasklens.task_execution_logs_p20200101 PARTITION OF "
        "tasklens.task_execution_logs FOR VALUES FROM ('2020-01-01') TO ('2020-01-02')",
        INSERT_LOG.replace("now(), now()", "'2020-01-01 12:00Z', now()"),
    )
    [[oid_before]] = _sql(url, "SELECT oid FROM pg_database WHERE datname = current_database()")

    again = fresh_postgres()

    [partitions] = _sql(
        again, "SELECT relname FROM pg_class WHERE relname = 'task_execution_logs_p20200101'"
    )
    assert partitions == []
    assert _state(again)[:2] == (0, 0)
    [[oid_after]] = _sql(again, "SELECT oid FROM pg_database WHERE datname = current_database()")
    assert oid_after["oid"] == oid_before["oid"]  # emptied in place, not dropped and created
