"""Does the log's own database work slow the worker? `python -m benchmarks.log_weight`

Target 1 (issue 17) compares a stock taskiq-redis worker with the same worker plus
TaskLensMiddleware; only the second makes PostgreSQL work, on the same two cores. This runs
three arms in rotating order, one worker process each: stock, the middleware writing to the
full log (every index and trigger the dashboard needs), and the middleware writing to a lean
copy of the log (its key indexes only, no triggers). If the database's per-row work were
what the middleware arm loses against stock, the lean arm would get that back.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

import asyncpg

from benchmarks import throughput
from benchmarks.bench_database import PG_ADMIN, REDIS_URL, fresh_database
from tasklens import migrate

LEAN_DB = "tasklens_bench_lean"
# What the upsert itself needs: the primary key and the key its ON CONFLICT names.
KEPT_INDEXES = frozenset({"task_execution_logs_pkey", "uq_task_logs_task_attempt"})
ARMS = (("raw", "full"), ("middleware", "full"), ("middleware", "lean"))


async def lean_database(full_url: str) -> str:
    """A new database with the log's schema, less its dashboard indexes and its triggers."""
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{LEAN_DB}"')
        await admin.execute(f'CREATE DATABASE "{LEAN_DB}"')
    finally:
        await admin.close()
    url = full_url.rsplit("/", 1)[0] + f"/{LEAN_DB}"
    await asyncio.to_thread(migrate.upgrade, url)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for (name,) in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'task_execution_logs' "
            "AND schemaname = 'tasklens'"
        ):
            if name not in KEPT_INDEXES:
                await conn.execute(f'DROP INDEX tasklens."{name}"')
        for (name,) in await conn.fetch(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
            "AND tgrelid = 'tasklens.task_execution_logs'::regclass"
        ):
            await conn.execute(f'DROP TRIGGER "{name}" ON tasklens.task_execution_logs')
    finally:
        await conn.close()
    return url


async def main(tasks: int, rounds: int) -> None:
    full = await fresh_database()
    await asyncio.to_thread(migrate.upgrade, full)
    urls = {"full": full, "lean": await lean_database(full)}
    runs: dict[tuple[str, str], list[throughput.Run]] = {arm: [] for arm in ARMS}
    for i in range(rounds):
        for arm, log in ARMS[i % 3 :] + ARMS[: i % 3]:
            run = await throughput.one_run(tasks, arm, REDIS_URL, urls[log], 1)
            runs[arm, log].append(run)
            print(
                f"  round {i + 1} {arm:10} {log}: {run.rate:5.0f} tasks/s, worker CPU "
                f"{run.cpu_us_per_task:4.0f} µs/task, PostgreSQL "
                f"{run.us_per_task(run.cpu.postgres):3.0f}, steal {run.cpu.steal_share:4.1%}",
                flush=True,
            )
    stock = runs["raw", "full"]
    for log in ("full", "lean"):
        logged = runs["middleware", log]
        rate = statistics.median(m.rate / s.rate for s, m in zip(stock, logged, strict=True))
        cpu = statistics.median(
            s.cpu_us_per_task / m.cpu_us_per_task for s, m in zip(stock, logged, strict=True)
        )
        pg = statistics.median(m.us_per_task(m.cpu.postgres) for m in logged)
        print(
            f"middleware, {log} log: paired ratio to stock, tasks/s {rate:.3f}, worker CPU "
            f"{cpu:.3f}; PostgreSQL {pg:.0f} µs a task"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.rounds))
