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
        await conn.execute("TRUNCATE task_execution_logs")
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
    finally:
        await conn.close()
    return time.perf_counter() - started


Query = Callable[[AsyncSession], Awaitable[object]]


def shapes(rows: int, page_size: int = 50) -> dict[str, Query]:
    now = datetime.now(UTC)
    last_page = math.ceil(rows / page_size)
    h = monitoring.HistoryFilter

    def history(where: monitoring.HistoryFilter, page: int) -> Query:
        return lambda s: monitoring.history(s, where, page, page_size)

    per_name = rows // 10
    return {
        "history, no filter, page 1": history(h(), 1),
        "history, no filter, page 2,000": history(h(), 2_000),
        "history, no filter, middle page": history(h(), last_page // 2),
        "history, no filter, last page": history(h(), last_page),
        "history, name, page 1": history(h(task_name="task_3"), 1),
        "history, name + success, page 2,000": history(
            h(task_name="task_3", status=TaskStatus.SUCCESS), 2_000
        ),
        "history, name + success, last page": history(
            h(task_name="task_3", status=TaskStatus.SUCCESS), math.ceil(per_name * 0.94 / page_size)
        ),
        "history, failed, page 1": history(h(status=TaskStatus.FAILED), 1),
        "history, name + failed + last 7 days, page 5": history(
            h(task_name="task_3", status=TaskStatus.FAILED, start_date=now - timedelta(days=7)), 5
        ),
        "history, last 24 h, page 100": history(h(start_date=now - timedelta(hours=24)), 100),
        "metrics, 24 h": lambda s: monitoring.metrics(s, 24),
        "metrics, 7 d": lambda s: monitoring.metrics(s, 24 * 7),
        "metrics, 30 d": lambda s: monitoring.metrics(s, 24 * 30),
    }


async def run(database_url: str, rows: int, repeat: int, skip_generate: bool) -> dict[str, float]:
    if not skip_generate:
        seconds = await generate(database_url, rows)
        print(f"  generated {rows:,} rows in {seconds:.1f}s", flush=True)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    results: dict[str, float] = {}
    for name, query in shapes(rows).items():
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
