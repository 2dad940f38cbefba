"""The Alembic migration runs forward and back on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa

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
