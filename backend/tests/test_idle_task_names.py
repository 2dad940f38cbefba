"""Every task name the log knows has a health card: one with no run in the window comes
back with zeros (from the hourly counts, not a scan of the log), in both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import fresh_sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens import monitoring
from tasklens.tracking.database import create_engine
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import build_recorder


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return fresh_sqlite(tmp_path / "log.db")


def _success(task_id: str, name: str, hours_ago: float) -> LifecycleChange:
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    return LifecycleChange(
        task_id=task_id,
        task_name=name,
        status=TaskStatus.SUCCESS,
        timestamp=as_time(at),
        created_at=as_time(at),
        started_at=as_time(at),
        completed_at=as_time(at),
        duration_ms=40.0,
    )


async def test_a_name_without_runs_in_the_window_is_listed_with_zeros(database_url: str) -> None:
    recorder = build_recorder(database_url, None)
    await recorder.store.upsert(
        [_success("b-1", "busy", hours_ago=1), _success("i-1", "idle", hours_ago=50)]
    )
    await recorder.store.close()
    engine = create_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            day = await monitoring.metrics(session, 24)
            three_days = await monitoring.metrics(session, 72)
    finally:
        await engine.dispose()
    busy, idle = day
    assert (busy.task_name, busy.success, busy.success_rate) == ("busy", 1, 1.0)
    assert idle.model_dump() == {
        "task_name": "idle",
        "total_executions": 0,
        "pending": 0,
        "running": 0,
        "success": 0,
        "failed": 0,
        "cancelled": 0,
        "avg_duration_ms": None,
        "p95_duration_ms": None,
        "success_rate": None,
    }
    assert [(m.task_name, m.success) for m in three_days] == [("busy", 1), ("idle", 1)]


async def test_an_empty_log_has_no_cards(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            assert await monitoring.metrics(session, 24) == []
    finally:
        await engine.dispose()
