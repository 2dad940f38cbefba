"""History and metrics query times on a generated log of N rows over 30 days.

Rows are generated inside PostgreSQL (generate_series): 10 task names, ~5 % failed,
~1 % cancelled, a few pending/running in the last hour. Each query shape runs `repeat`
times through the same functions the API calls; p50/p95 are reported per shape.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens import monitoring, rollups
from tasklens.tracking.database import connect_postgres, create_engine, session_factory
from tasklens.tracking.models import TaskStatus

# One day's rows, generated straight into a detached table that is then attached as that
# day's partition: the indexes are built once, sorted, instead of row by row.
GENERATE_DAY = """
INSERT INTO {table} (id, task_id, attempt, task_name, status, params, queue, worker,
    started_at, completed_at, duration_ms, error_message, error_traceback, created_at,
    updated_at)
SELECT g, 'bench-' || g, 1, 'task_' || (g % 10),
       CASE WHEN g % 100 < 5 THEN 'failed' WHEN g % 100 = 5 THEN 'cancelled'
            ELSE 'success' END,
       jsonb_build_object('n', g), 'tasklens', 'bench:1',
       ts, ts + make_interval(secs => (g % 997) / 100.0), (g % 997) * 10.0,
       CASE WHEN g % 100 < 5 THEN 'ValueError: bad record ' || g END,
       CASE WHEN g % 100 < 5 THEN 'Traceback (most recent call last): …' END,
       ts, ts
FROM (SELECT g, $3::timestamptz - make_interval(secs => (g - $1) * $4::float8) AS ts
      FROM generate_series($1::bigint, $2::bigint) AS g) AS s
"""

DAY_ROLLUPS = """
INSERT INTO task_log_counts (bucket, task_name, status, count, duration_count, duration_sum)
SELECT date_trunc('hour', created_at, 'UTC'), task_name, status, count(*), count(duration_ms),
       coalesce(sum(duration_ms), 0)
FROM {table} GROUP BY 1, 2, 3;
INSERT INTO task_duration_histogram (grain, bucket, task_name, status, bin, count)
SELECT 1, date_trunc('hour', created_at, 'UTC'), task_name, status, {bin}, count(*)
FROM {table} WHERE duration_ms IS NOT NULL
  AND status IN ('success', 'failed', 'cancelled') GROUP BY 1, 2, 3, 4, 5;
INSERT INTO task_duration_histogram (grain, bucket, task_name, status, bin, count)
SELECT 24, date_trunc('day', bucket, 'UTC'), task_name, status, bin, sum(count)
FROM task_duration_histogram
WHERE grain = 1 AND bucket >= '{lo}' AND bucket < '{hi}' GROUP BY 1, 2, 3, 4, 5;
"""


async def day_rollups(conn: asyncpg.Connection, table: str, lo: datetime) -> None:
    """The counts and histograms of one day's rows, as the triggers would have kept them."""
    async with conn.transaction():
        await conn.execute(
            DAY_ROLLUPS.format(
                table=table,
                bin=rollups.bin_sql("duration_ms", "postgresql"),
                lo=lo.isoformat(),
                hi=(lo + timedelta(days=1)).isoformat(),
            )
        )


async def generate(database_url: str, rows: int, days: int = 30) -> float:
    """`rows` rows over the last `days` days, one day partition each (today's ends now).
    The counts and histograms the triggers keep are computed once per day (the same numbers,
    without paying the triggers row by row)."""
    started = time.perf_counter()
    conn = await connect_postgres(database_url)
    try:
        await conn.execute("TRUNCATE task_execution_logs, task_log_counts, task_duration_histogram")
        for (name,) in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'task_execution_logs'::regclass "
            "AND c.relname <> 'task_execution_logs_default'"
        ):
            await conn.execute(f'DROP TABLE "{name}"')
        now = datetime.now(UTC)
        today = now.replace(hour=0, minute=0, second=0, microsecond=0)
        per_day = rows // days
        for back in range(days):
            lo = today - timedelta(days=back)
            hi = min(lo + timedelta(days=1), now)
            count = per_day if back else rows - per_day * (days - 1)
            first = back * per_day + 1
            table = f"task_execution_logs_p{lo:%Y%m%d}"
            await conn.execute(f"DROP TABLE IF EXISTS {table}")  # left by a broken run
            await conn.execute(
                f"CREATE TABLE {table} (LIKE task_execution_logs INCLUDING DEFAULTS)"
            )
            await conn.execute(
                GENERATE_DAY.format(table=table),
                first,
                first + count - 1,
                hi - timedelta(microseconds=1),
                (hi - lo).total_seconds() / count,
            )
            await day_rollups(conn, table, lo)
            await conn.execute(
                f"ALTER TABLE task_execution_logs ATTACH PARTITION {table} FOR VALUES "
                f"FROM ('{lo.isoformat()}') TO ('{(lo + timedelta(days=1)).isoformat()}')"
            )
            print(
                f"    day -{back}: {count:,} rows, {time.perf_counter() - started:.0f}s", flush=True
            )
        await conn.execute(
            "SELECT setval('task_execution_logs_id_seq', (SELECT max(id) FROM task_execution_logs))"
        )
        await conn.execute("SELECT tasklens_ensure_log_partitions(current_date, current_date + 7)")
        await conn.execute("VACUUM ANALYZE task_execution_logs")
        await conn.execute("VACUUM ANALYZE task_log_counts")
        await conn.execute("VACUUM ANALYZE task_duration_histogram")
    finally:
        await conn.close()
    return time.perf_counter() - started


Query = Callable[[AsyncSession], Awaitable[object]]
Page = int | str  # a number, "middle" or "last"
Other = tuple[str, int, str | None]  # ("timeseries", hours, task name) or ("task", 0, None)
Search = tuple[monitoring.HistoryFilter, int, monitoring.HistorySort]


def search_shapes() -> dict[str, Search]:
    """The history's search (`q`), filters only the log can answer, and the other sorts:
    answered from migration 0009's indexes, never a scan of the log."""
    h, by = monitoring.HistoryFilter, monitoring.HistorySort
    return {
        "search, task id prefix, page 1": (h(q="bench-123456"), 1, by.CREATED_DESC),
        "search, task name text, page 1": (h(q="task_3"), 1, by.CREATED_DESC),
        "search, params text, page 1": (h(q="1234567"), 1, by.CREATED_DESC),
        "search, error text, page 1": (h(q="bad record 424242"), 1, by.CREATED_DESC),
        "search, no match, page 1": (h(q="zzqqxx"), 1, by.CREATED_DESC),
        "search, error text + failed, page 2": (
            h(q="bad record 12", status=TaskStatus.FAILED),
            2,
            by.CREATED_DESC,
        ),
        "search, worker, page 1": (h(worker="bench:1"), 1, by.CREATED_DESC),
        "search, queue + name, page 1": (
            h(queue="tasklens", task_name="task_3"),
            1,
            by.CREATED_DESC,
        ),
        "search, longest first, page 1": (h(), 1, by.DURATION_DESC),
        "search, earliest started, page 1": (h(), 1, by.STARTED),
        "search, longest failed first, page 1": (h(status=TaskStatus.FAILED), 1, by.DURATION_DESC),
    }


def shapes() -> dict[str, tuple[monitoring.HistoryFilter, Page] | int | Other]:
    """History shapes as (filter, page); metrics shapes as a window in hours."""
    now = datetime.now(UTC)
    h = monitoring.HistoryFilter
    name_success = h(task_name="task_3", status=TaskStatus.SUCCESS)
    return {
        "history, no filter, page 1": (h(), 1),
        "history, no filter, page 2,000": (h(), 2_000),
        "history, no filter, middle page": (h(), "middle"),
        "history, no filter, last page": (h(), "last"),
        "history, name, page 1": (h(task_name="task_3"), 1),
        "history, name, last page": (h(task_name="task_3"), "last"),
        "history, name + success, page 2,000": (name_success, 2_000),
        "history, name + success, last page": (name_success, "last"),
        "history, failed, page 1": (h(status=TaskStatus.FAILED), 1),
        "history, failed, middle page": (h(status=TaskStatus.FAILED), "middle"),
        "history, name + failed + last 7 days, page 5": (
            h(task_name="task_3", status=TaskStatus.FAILED, start_date=now - timedelta(days=7)),
            5,
        ),
        "history, 36 h ago to 12 h ago, page 100": (
            h(
                start_date=now - timedelta(hours=36, minutes=7),
                end_date=now - timedelta(hours=12, minutes=3),
            ),
            100,
        ),
        "metrics, 24 h": 24,
        "metrics, 7 d": 24 * 7,
        "metrics, 30 d": 24 * 30,
        "timeseries, 24 h": ("timeseries", 24, None),
        "timeseries, 30 d": ("timeseries", 24 * 30, None),
        "timeseries, 30 d, one name": ("timeseries", 24 * 30, "task_3"),
        "task by id": ("task", 0, None),
    }


async def _resolve(session: AsyncSession, where: monitoring.HistoryFilter, page: Page) -> int:
    pages = (await monitoring.history(session, where, 1, PAGE_SIZE)).total_pages
    if isinstance(page, int):
        return max(1, min(page, pages))  # small runs have fewer pages
    return max(1, pages if page == "last" else pages // 2)


PAGE_SIZE = 50


def _metrics_query(hours: int) -> Query:
    return lambda session: monitoring.metrics(session, hours)


def _other_query(kind: str, hours: int, name: str | None) -> Query:
    if kind == "timeseries":
        return lambda session: monitoring.timeseries(session, hours, name)
    return lambda session: monitoring.task_attempts(session, "bench-123457")


def _history_query(
    where: monitoring.HistoryFilter,
    page: int,
    sort: monitoring.HistorySort = monitoring.HistorySort.CREATED_DESC,
) -> Query:
    # A copy per run: `history` fills in the filter's resolved names.
    return lambda session: monitoring.history(session, replace(where), page, PAGE_SIZE, sort)


async def run(database_url: str, rows: int, repeat: int, skip_generate: bool) -> dict[str, float]:
    if not skip_generate:
        seconds = await generate(database_url, rows)
        print(f"  generated {rows:,} rows in {seconds:.1f}s", flush=True)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    queries: dict[str, Query] = {}
    for name, shape in shapes().items():
        if isinstance(shape, int):
            queries[name] = _metrics_query(shape)
        elif isinstance(shape[0], str):
            queries[name] = _other_query(shape[0], shape[1], shape[2])
        else:
            async with sessions() as session:
                page = await _resolve(session, shape[0], shape[1])
            queries[name] = _history_query(shape[0], page)
    for name, (where, page, sort) in search_shapes().items():
        queries[name] = _history_query(where, page, sort)
    results: dict[str, float] = {}
    for name, query in queries.items():
        timings = []
        for _ in range(repeat):
            async with sessions() as session:
                started = time.perf_counter()
                await query(session)
                timings.append((time.perf_counter() - started) * 1000)
        p95 = sorted(timings)[max(0, math.ceil(0.95 * len(timings)) - 1)]
        results[name] = p95
        print(
            f"  {name:<46} p50 {statistics.median(timings):8.2f} ms   p95 {p95:8.2f} ms", flush=True
        )
    await engine.dispose()
    return results
