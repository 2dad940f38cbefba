"""The log at scale: rollups that always equal the rows, day partitions, retention that takes
its rows out of the counts and histograms, and a migration that keeps existing rows."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import fresh_sqlite
from sqlmodel import col

from tasklens import migrate, monitoring, rollups
from tasklens.log_maintenance import Retention, maintain
from tasklens.tracking.database import create_engine, own_name, session_factory
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import build_recorder

NOW = datetime.now(UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return fresh_sqlite(tmp_path / "log.db")


def _change(i: int, status: TaskStatus, days_ago: float, **fields: object) -> LifecycleChange:
    created = NOW - timedelta(days=days_ago, minutes=i)
    return LifecycleChange(
        task_id=f"t{i}",
        task_name=f"job{i % 3}",
        status=status,
        timestamp=as_time(created),
        created_at=as_time(created),
        **fields,  # type: ignore[arg-type]
    )


def _lifecycles(days_ago: float, count: int, first: int = 0) -> list[list[LifecycleChange]]:
    """Three writes per task, as the client and the worker make them: pending, running, then
    an outcome that knows no creation time (the worker's `post_execute`)."""
    pending, running, finished = [], [], []
    for i in range(first, first + count):
        pending.append(_change(i, TaskStatus.PENDING, days_ago, params={"i": i}))
        running.append(_change(i, TaskStatus.RUNNING, days_ago, worker="w:1"))
        outcome = _change(i, TaskStatus.FAILED if i % 4 == 0 else TaskStatus.SUCCESS, days_ago)
        outcome.created_at = None
        outcome.timestamp = as_time(NOW)
        outcome.duration_ms = 0.3 + i * 37.5
        finished.append(outcome)
    return [pending, running, finished]


async def _write(url: str, batches: list[list[LifecycleChange]]) -> None:
    recorder = build_recorder(url, None)
    try:
        for batch in batches:
            await recorder.store.upsert(batch)
    finally:
        await recorder.store.close()


def _hour(value: datetime | str) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H") if moment.tzinfo else str(moment)[:13]


def _day(value: datetime | str) -> str:
    return _hour(value)[:10]


async def _consistency(url: str) -> tuple[list[tuple[object, ...]], Counter[tuple[object, ...]]]:
    """Asserts that the counts and both histogram grains equal what the rows say; returns
    the rows (task_id, status, created_at, duration_ms) and the recomputed histogram."""
    engine = create_engine(url)
    log, counts_table, histogram_table = (
        own_name(n, engine.dialect)
        for n in ("task_execution_logs", "task_log_counts", "task_duration_histogram")
    )
    async with engine.connect() as conn:
        rows = [
            tuple(r)
            for r in await conn.execute(
                sa.text(f"SELECT task_id, task_name, status, created_at, duration_ms FROM {log}")
            )
        ]
        counts = Counter(
            {
                (_hour(b), n, s): int(c)
                for b, n, s, c in await conn.execute(
                    sa.text(f"SELECT bucket, task_name, status, count FROM {counts_table}")
                )
                if c
            }
        )
        histogram = Counter(
            {
                (g, _hour(b) if g == 1 else _day(b), n, s, int(i)): int(c)
                for g, b, n, s, i, c in await conn.execute(
                    sa.text(
                        "SELECT grain, bucket, task_name, status, bin, count "
                        f"FROM {histogram_table}"
                    )
                )
                if c
            }
        )
    await engine.dispose()
    expected_counts = Counter((_hour(c), n, s) for _, n, s, c, _ in rows)
    expected_histogram: Counter[tuple[object, ...]] = Counter()
    for _, name, status, created, duration in rows:
        if duration is not None and status in ("success", "failed", "cancelled"):
            index = rollups.bin_of(float(duration))
            expected_histogram[(1, _hour(created), name, status, index)] += 1
            expected_histogram[(24, _day(created), name, status, index)] += 1
    assert counts == expected_counts
    assert histogram == expected_histogram
    return rows, expected_histogram


def test_histograms_follow_every_write_and_count_each_row_once(database_url: str) -> None:
    asyncio.run(_write(database_url, _lifecycles(days_ago=0.1, count=40)))
    rows, histogram = asyncio.run(_consistency(database_url))
    assert len(rows) == 40  # the outcome without a creation time joined its row
    assert sum(histogram.values()) == 80  # 40 terminal rows, hourly and daily


def test_retention_drops_old_days_and_keeps_failed_rows_longer(database_url: str) -> None:
    batches = [
        old + mid + recent
        for old, mid, recent in zip(
            _lifecycles(days_ago=100, count=8),
            _lifecycles(days_ago=40, count=8, first=100),
            _lifecycles(days_ago=2, count=8, first=200),
            strict=True,
        )
    ]
    asyncio.run(_write(database_url, batches))

    async def run_maintenance() -> None:
        engine = create_engine(database_url)
        if engine.dialect.name == "postgresql":
            async with engine.begin() as conn:  # give the old days partitions of their own
                await conn.execute(
                    sa.text("SELECT tasklens_ensure_log_partitions(:a, :b)"),
                    {"a": (NOW - timedelta(days=41)).date(), "b": NOW.date()},
                )
        await asyncio.gather(*(maintain(engine, Retention(30, 60)) for _ in range(4)))
        await engine.dispose()

    asyncio.run(run_maintenance())
    rows, _ = asyncio.run(_consistency(database_url))
    kept = {task_id: status for task_id, _, status, _, _ in rows}
    assert {t for t in kept if int(str(t)[1:]) < 100} == set()  # 100 days: all gone
    assert {t for t in kept if 100 <= int(str(t)[1:]) < 200} == {"t100", "t104"}  # failed
    assert len([t for t in kept if int(str(t)[1:]) >= 200]) == 8  # 2 days: all kept

    async def a_month_later() -> None:
        engine = create_engine(database_url)
        await maintain(engine, Retention(30, 60), now=NOW + timedelta(days=25))
        await engine.dispose()

    asyncio.run(a_month_later())  # the kept failed rows are 65 days old now
    rows, _ = asyncio.run(_consistency(database_url))
    assert sorted(str(r[0]) for r in rows) == sorted(f"t{i}" for i in range(200, 208))


def test_postgres_log_is_partitioned_by_day(postgres_url: str) -> None:
    asyncio.run(_write(postgres_url, _lifecycles(days_ago=0, count=5)))

    async def look() -> tuple[list[str], set[str]]:
        engine = create_engine(postgres_url)
        async with engine.connect() as conn:
            parts = list(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT c.relname FROM pg_inherits i "
                            "JOIN pg_class c ON c.oid = i.inhrelid "
                            "WHERE i.inhparent = 'task_execution_logs'::regclass "
                            "ORDER BY 1"
                        )
                    )
                ).scalars()
            )
            holders = set(
                (
                    await conn.execute(
                        sa.text("SELECT DISTINCT tableoid::regclass::text FROM task_execution_logs")
                    )
                ).scalars()
            )
        await engine.dispose()
        return parts, holders

    parts, holders = asyncio.run(look())
    today = f"task_execution_logs_p{NOW:%Y%m%d}"
    ahead = f"task_execution_logs_p{NOW + timedelta(days=7):%Y%m%d}"
    assert {today, ahead, "task_execution_logs_default"} <= set(parts)
    assert holders <= {today, f"task_execution_logs_p{NOW - timedelta(days=1):%Y%m%d}"}


def test_migration_keeps_existing_rows(postgres_url: str) -> None:
    migrate.downgrade(postgres_url, "0004")
    asyncio.run(_write_before_0005(postgres_url))
    migrate.upgrade(postgres_url)
    rows, histogram = asyncio.run(_consistency(postgres_url))
    assert sorted(str(r[0]) for r in rows) == sorted(f"old{i}" for i in range(30))
    assert sum(histogram.values()) == 2 * 20  # the 20 successful ones, both grains
    asyncio.run(_write(postgres_url, _lifecycles(days_ago=0, count=3)))  # writes go on
    assert len(asyncio.run(_consistency(postgres_url))[0]) == 33


async def _write_before_0005(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO task_execution_logs (task_id, attempt, task_name, status, "
                "duration_ms, created_at, updated_at) "
                "SELECT 'old' || g, 1, 'job', CASE WHEN g < 20 THEN 'success' ELSE 'pending' "
                "END, CASE WHEN g < 20 THEN g * 11.0 END, now() - g * interval '1 day', now() "
                "FROM generate_series(0, 29) AS g"
            )
        )
    await engine.dispose()


def test_every_page_matches_one_ordered_read(database_url: str) -> None:
    """Pages are read from whichever end of their hours is closer; together they must be
    exactly the log, newest first, with any filter."""
    changes = [
        _change(i, TaskStatus.SUCCESS if i % 3 else TaskStatus.FAILED, 0, duration_ms=1.0)
        for i in range(130)
    ]
    for i, c in enumerate(changes):  # many rows share an hour, some share a timestamp
        c.created_at = as_time(NOW - timedelta(minutes=(i // 2) % 70, hours=i // 60))
    asyncio.run(_write(database_url, [changes]))

    async def walk(where: monitoring.HistoryFilter, page_size: int) -> tuple[list[str], list[str]]:
        engine = create_engine(database_url)
        sessions = session_factory(engine)
        async with sessions() as session:
            expected = where.apply(sa.select(col(monitoring.Log.task_id))).order_by(
                col(monitoring.Log.created_at).desc(), col(monitoring.Log.id).desc()
            )
            want = [str(t) for t in (await session.execute(expected)).scalars()]
            got: list[str] = []
            first = await monitoring.history(session, where, 1, page_size)
            for page in range(1, first.total_pages + 1):
                result = await monitoring.history(session, where, page, page_size)
                assert result.total_count == len(want)
                got += [item.task_id for item in result.items]
        await engine.dispose()
        return got, want

    for where in (
        monitoring.HistoryFilter(),
        monitoring.HistoryFilter(task_name="job1"),
        monitoring.HistoryFilter(status=TaskStatus.FAILED),
        monitoring.HistoryFilter(start_date=NOW - timedelta(minutes=95)),
    ):
        for page_size in (7, 50):
            got, want = asyncio.run(walk(where, page_size))
            assert got == want and want


@pytest.mark.parametrize("exact_samples", [monitoring.EXACT_SAMPLES, 0], ids=["exact", "bins"])
def test_metrics_count_the_windows_first_partial_hour_from_the_log(
    database_url: str, exact_samples: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's first hour is cut by its start: its rows come from the log, counts and
    duration bins in one pass, and must agree with the rows exactly. With no exact read
    allowed, the p95 comes from those bins, as it does for a busy task name."""
    monkeypatch.setattr(monitoring, "EXACT_SAMPLES", exact_samples)
    since = datetime.now(UTC) - timedelta(hours=2)
    changes = [_change(i, TaskStatus.SUCCESS, 0, duration_ms=10.0 * (i + 1)) for i in range(20)] + [
        _change(20 + i, TaskStatus.RUNNING, 0) for i in range(3)
    ]
    for c in changes:
        # inside the window, before its first hour
        c.created_at = as_time(since + timedelta(seconds=1))
        c.task_name = "cut"
    too_old = _change(99, TaskStatus.SUCCESS, 0, duration_ms=5000.0)
    too_old.created_at, too_old.task_name = as_time(since - timedelta(minutes=5)), "cut"
    asyncio.run(_write(database_url, [[*changes, too_old]]))

    async def read() -> monitoring.TaskMetrics:
        engine = create_engine(database_url)
        async with session_factory(engine)() as session:
            [cut] = await monitoring.metrics(session, 2)
        await engine.dispose()
        return cut

    cut = asyncio.run(read())
    assert (cut.success, cut.running, cut.total_executions) == (20, 3, 23)
    assert cut.avg_duration_ms == pytest.approx(105.0)
    if exact_samples:
        assert cut.p95_duration_ms == 190.0
    else:
        assert cut.p95_duration_ms == pytest.approx(190.0, rel=rollups.RELATIVE_ERROR)
        assert cut.p95_duration_ms != 190.0  # a bin's value, so not the exact one
