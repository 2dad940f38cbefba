"""`GET /metrics` on a big log: the scrape against `GET /health` of the same server, in the
same run, and what the outcome-totals triggers (migration 0007) cost the write path.

The log is generated as `queries` does (N rows over 30 days); the totals table is then filled
as the migration fills it. EXPLAIN shows the scrape's query reads the totals table, not the
log. The scrape and /health alternate, `repeat` times each, on one kept-alive connection.
The write cost is the batched-upsert rate (`writes`) with the 0007 triggers enabled and
disabled, alternating rounds.
"""

from __future__ import annotations

import importlib
import statistics
import time

import asyncpg

from benchmarks import queries, writes
from benchmarks.enqueue import TOKEN, RawHttp, start_server, wait_healthy

_TOTALS = importlib.import_module("tasklens.migrations.versions.0007_task_outcome_totals")
FILL_TOTALS = f"""
TRUNCATE task_outcome_totals;
INSERT INTO task_outcome_totals (task_name, status, bin, count, duration_ms_sum)
SELECT task_name, status, {_TOTALS._bin("duration_ms", "postgresql")},
       count(*), coalesce(sum(duration_ms), 0)
FROM task_execution_logs WHERE status IN ('success', 'failed', 'cancelled')
GROUP BY 1, 2, 3;
ANALYZE task_outcome_totals;
"""
SCRAPE_QUERY = (
    "SELECT task_name, status, bin, count, duration_ms_sum FROM task_outcome_totals"  # as read
)
TRIGGERS = ("task_outcome_totals_insert", "task_outcome_totals_update")


def _plain(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


async def _explain(database_url: str) -> list[str]:
    conn = await asyncpg.connect(_plain(database_url))
    try:
        await conn.execute(FILL_TOTALS)
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {SCRAPE_QUERY}")
    finally:
        await conn.close()
    return [str(row[0]) for row in rows]


async def _timed(client: RawHttp, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    status, body = await client.exchange("GET", path)
    assert status == 200, (path, status, body[:200])
    return (time.perf_counter() - started) * 1000, len(body)


async def _scrape_vs_health(redis_url: str, database_url: str, repeat: int) -> dict[str, float]:
    server, port = start_server(redis_url, database_url, 1)
    try:
        await wait_healthy(port)
        client = RawHttp("127.0.0.1", port, TOKEN)
        scrape, health, size = [], [], 0
        for path in ("/metrics", "/health"):  # warm both
            await _timed(client, path)
        for _ in range(repeat):
            took, size = await _timed(client, "/metrics")
            scrape.append(took)
            health.append((await _timed(client, "/health"))[0])
        await client.close()
    finally:
        server.terminate()
        server.wait(20)
    return {
        "scrape_p50_ms": statistics.median(scrape),
        "health_p50_ms": statistics.median(health),
        "scrape_bytes": float(size),
    }


async def _set_triggers(database_url: str, enabled: bool) -> None:
    conn = await asyncpg.connect(_plain(database_url))
    try:
        for name in TRIGGERS:
            action = "ENABLE" if enabled else "DISABLE"
            await conn.execute(f"ALTER TABLE task_execution_logs {action} TRIGGER {name}")
    finally:
        await conn.close()


async def _write_cost(database_url: str, tasks: int, rounds: int) -> dict[str, float]:
    with_totals, without = [], []
    try:
        for _ in range(rounds):
            await _set_triggers(database_url, False)
            without.append(await writes._batched(database_url, tasks, 500, 1))
            await _set_triggers(database_url, True)
            with_totals.append(await writes._batched(database_url, tasks, 500, 1))
    finally:
        await _set_triggers(database_url, True)
    return {
        "writes_with_totals_per_s": statistics.median(with_totals),
        "writes_without_totals_per_s": statistics.median(without),
    }


async def run(
    redis_url: str,
    database_url: str,
    rows: int,
    repeat: int,
    write_tasks: int,
    rounds: int,
    skip_generate: bool,
) -> dict[str, float]:
    if not skip_generate:
        print(f"  generating {rows:,} rows over 30 days", flush=True)
        await queries.generate(database_url, rows)
    plan = await _explain(database_url)
    print("  EXPLAIN (ANALYZE) of the scrape's query:", flush=True)
    for line in plan:
        print(f"    {line}")
    result = await _scrape_vs_health(redis_url, database_url, repeat)
    result |= await _write_cost(database_url, write_tasks, rounds)
    return result
