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
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens import monitoring
from tasklens.database import create_engine, session_factory
from tasklens.models import TaskStatus

GENERATE = """
INSERT INTO task_execution_logs (task_id, attempt, task_name, status, params, queue, worker,
    started_at, completed_at, duration_ms, error_message, error_traceback, created_at,
    updated_at)
SELECT 'bench-' || g, 1, 'task_' || (g % 10),
       CASE WHEN g % 100 < 5 THEN 'failed' WHEN g % 100 = 5 THEN 'cancelled'
            ELSE 'success' END,
       jsonb_build_object('n', g), 'tasklens', 'bench:1',
       ts, ts + make_interval(secs => (g % 997) / 100.0), (g % 997) * 10.0,
       CASE WHEN g % 100 < 5 THEN 'ValueError: bad record ' || g END,
       CASE WHEN g % 100 < 5 THEN 'Traceback (most recent call last): …' END,
       ts, ts
FROM (SELECT g, $2::timestamptz - make_interval(secs => g * (30 * 86400.0 / $1)) AS ts
      FROM generate_series(1, $1) AS g) AS s
"""


async def generate(database_url: str, rows: int) -> float:
    started = time.perf_counter()
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        await conn.execute("TRUNCATE task_execution_logs, task_log_counts")
        now = datetime.now(UTC)
        for start in range(0, rows, 500_000):
            count = min(500_000, rows - start)
            await conn.execute(
                GENERATE.replace("'bench-' || g", f"'bench-' || (g + {start})").replace(
                    "(g % 10)", f"((g + {start}) % 10)"
                ),
                count,
                now - timedelta(days=30 * start / rows),
            )
        await conn.execute("VACUUM ANALYZE task_execution_logs")
        await conn.execute("VACUUM ANALYZE task_log_counts")
    finally:
        await conn.close()
    return time.perf_counter() - started


Query = Callable[[AsyncSession], Awaitable[object]]
Page = int | str  # a number, "middle" or "last"


def shapes() -> dict[str, tuple[monitoring.HistoryFilter, Page] | int]:
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
    }


async def _resolve(session: AsyncSession, where: monitoring.HistoryFilter, page: Page) -> int:
    if isinstance(page, int):
        return page
    pages = (await monitoring.history(session, where, 1, PAGE_SIZE)).total_pages
    return max(1, pages if page == "last" else pages // 2)


PAGE_SIZE = 50


def _metrics_query(hours: int) -> Query:
    return lambda session: monitoring.metrics(session, hours)


def _history_query(where: monitoring.HistoryFilter, page: int) -> Query:
    return lambda session: monitoring.history(session, where, page, PAGE_SIZE)


async def run(database_url: str, rows: int, repeat: int, skip_generate: bool) -> dict[str, float]:
    if not skip_generate:
        seconds = await generate(database_url, rows)
        print(f"  generated {rows:,} rows in {seconds:.1f}s", flush=True)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    results: dict[str, float] = {}
    for name, shape in shapes().items():
        query: Query
        if isinstance(shape, int):
            query = _metrics_query(shape)
        else:
            async with sessions() as session:
                page = await _resolve(session, shape[0], shape[1])
            query = _history_query(shape[0], page)
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
