"""The schedules view: a cron's next run is the next minute taskiq's scheduler sends it, in
UTC; an interval's follows its last send; the last outcome is the task the scheduler sent, or
the analysis that task started, as the log has it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pycron
import pytest
from conftest import fresh_sqlite
from redis.asyncio import Redis
from sqlmodel.ext.asyncio.session import AsyncSession
from taskiq import InMemoryBroker
from taskiq.scheduler.scheduler import TaskiqScheduler

from tasklens.cron import next_fire
from tasklens.schedule_lease import Sent, record_sent
from tasklens.schedule_runs import last_sent, next_run, schedule_views
from tasklens.schedules import REFRESH_TASK, FileScheduleSource, ScheduleEntry
from tasklens.tracking.database import create_engine
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import build_recorder

NOW = datetime(2026, 11, 30, 3, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("* * * * *", datetime(2026, 11, 30, 3, 6, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2026, 11, 30, 3, 15, tzinfo=UTC)),
        ("30 2 * * *", datetime(2026, 12, 1, 2, 30, tzinfo=UTC)),
        ("0 0 * * sun", datetime(2026, 12, 6, tzinfo=UTC)),
        ("0 9 1 * 1", datetime(2026, 11, 30, 9, tzinfo=UTC)),  # 1st of the month or a Monday
        ("0 0 29 2 *", datetime(2028, 2, 29, tzinfo=UTC)),
    ],
)
def test_a_cron_runs_next_at_its_next_matching_minute_in_utc(cron: str, expected: datetime) -> None:
    assert next_fire(cron, NOW) == expected
    assert pycron.is_now(cron, expected)  # what taskiq's scheduler checks each second


def test_the_next_run_is_in_utc_whatever_zone_the_clock_reads() -> None:
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    found = next_fire("30 2 * * *", tokyo)
    assert found == datetime(2026, 12, 1, 2, 30, tzinfo=UTC) and found.utcoffset() == timedelta(0)


def test_a_cron_that_never_matches_has_no_next_run() -> None:
    assert next_fire("0 0 31 2 *", NOW) is None


def test_an_interval_runs_next_one_interval_after_its_last_send() -> None:
    entry = ScheduleEntry.model_validate(
        {"kind": "github_user", "subject": "a", "interval_seconds": 600}
    )
    sent = Sent("t", NOW - timedelta(seconds=100))
    assert next_run(entry, NOW, sent) == NOW + timedelta(seconds=500)
    # Never sent, or overdue: the next period the firing lease opens (multiples of 600 s).
    assert next_run(entry, NOW, None) == datetime(2026, 11, 30, 3, 10, tzinfo=UTC)
    overdue = Sent("t", NOW - timedelta(hours=2))
    assert next_run(entry, NOW, overdue) == datetime(2026, 11, 30, 3, 10, tzinfo=UTC)


async def test_the_scheduler_remembers_the_task_it_sent(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "schedules.json"
    path.write_text(
        json.dumps({"schedules": [{"kind": "github_user", "subject": "a", "cron": "* * * * *"}]})
    )
    received: list[str] = []
    broker = InMemoryBroker()

    @broker.task(task_name=REFRESH_TASK)
    async def refresh(kind: str, subject: str, period: str | None = None) -> None:
        received.append(subject)

    redis = Redis.from_url(redis_url)
    source = FileScheduleSource(path, "q", redis=redis)
    await broker.startup()
    try:
        [task] = await source.get_schedules()
        await TaskiqScheduler(broker, [source]).on_ready(source, task)
        await broker.wait_all()
        [sent] = (await last_sent(redis, "q", [task.schedule_id])).values()
    finally:
        await broker.shutdown()
        await redis.aclose()
    assert received == ["a"]
    assert sent.task_id == task.task_id and len(sent.task_id) == 32
    assert abs(sent.at - datetime.now(UTC)) < timedelta(seconds=5)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return fresh_sqlite(tmp_path / "log.db")


def _row(task_id: str, name: str, status: TaskStatus, **more: Any) -> LifecycleChange:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return LifecycleChange(
        task_id=task_id,
        task_name=name,
        status=status,
        timestamp=as_time(at),
        created_at=as_time(at),
        completed_at=as_time(at) if status.is_terminal else None,
        **more,
    )


async def test_the_last_outcome_is_the_analysis_the_refresh_started(
    database_url: str, redis_url: str
) -> None:
    entries = [
        ScheduleEntry.model_validate({"kind": "github_user", "subject": s, "cron": "0 * * * *"})
        for s in ("started", "still-queued", "never-sent")
    ]
    recorder = build_recorder(database_url, None)
    await recorder.store.upsert(
        [
            _row("refresh-1", REFRESH_TASK, TaskStatus.SUCCESS, result={"task_id": "analysis-1"}),
            _row("analysis-1", "analysis.github_user", TaskStatus.FAILED, error_message="boom"),
        ]
    )
    await recorder.store.close()
    redis = Redis.from_url(redis_url)
    sent_at = datetime.now(UTC) - timedelta(minutes=2)
    await record_sent(redis, "q", entries[0].schedule_id, Sent("refresh-1", sent_at))
    await record_sent(redis, "q", entries[1].schedule_id, Sent("refresh-2", sent_at))
    engine = create_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            started, queued, never = await schedule_views(
                session, redis, "q", entries, datetime.now(UTC)
            )
    finally:
        await engine.dispose()
        await redis.aclose()
    assert started.last_run is not None and queued.last_run is not None
    assert (started.last_run.task_id, started.last_run.status) == ("analysis-1", "failed")
    assert started.last_run.task_name == "analysis.github_user"
    # Sent, but its row is not in the log (not yet written, or gone with retention).
    assert (queued.last_run.task_id, queued.last_run.status) == ("refresh-2", "sent")
    assert queued.last_run.at == sent_at
    assert never.last_run is None
    assert never.next_run_at is not None and never.next_run_at.minute == 0
