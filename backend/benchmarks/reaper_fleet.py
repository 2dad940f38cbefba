"""What reaping costs PostgreSQL with many processes and a paused backlog (specs/issue17).

`python -m benchmarks.reaper_fleet [--reapers K] [--pending M] [--seconds S]`: M old
`pending` rows (a paused queue's backlog) in TASKLENS_BENCH_DB_NAME, K reapers as K processes
run them (one engine and Redis connection each, the production interval) in this process,
and the CPU time (`/proc`, user + system) of the database's PostgreSQL backends over S
seconds, per second. Python's own CPU is not counted: the figure is what the fleet's
reaping costs the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import asyncpg

from benchmarks.bench_database import BENCH_DB, PG_ADMIN, REDIS_URL, fresh_database
from tasklens import migrate
from tasklens.reaper import Reaper
from tasklens.tracking.database import create_engine

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


async def _backends(admin: asyncpg.Connection) -> set[int]:
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        BENCH_DB,
    )
    return {r["pid"] for r in rows}


async def _setup(url: str, pending: int) -> None:
    await fresh_database()
    await asyncio.to_thread(migrate.upgrade, url)
    conn = await asyncpg.connect(
        url.replace("+asyncpg", ""), server_settings={"search_path": "tasklens"}
    )
    try:
        await conn.execute("TRUNCATE task_execution_logs")
        await conn.execute(
            "INSERT INTO task_execution_logs (task_id, attempt, task_name, status, queue, "
            "created_at, updated_at) SELECT 'backlog-' || i, 1, 'demo.noop', 'pending', "
            "'tasklens', now() - interval '1 minute', now() - interval '1 minute' "
            "FROM generate_series(1, $1::int) i",
            pending,
        )
        await conn.execute("ANALYZE task_execution_logs")
    finally:
        await conn.close()


async def run(reapers: int, pending: int, seconds: float, setup: bool) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{BENCH_DB}"
    if setup:
        await _setup(url, pending)
    engines = [create_engine(url) for _ in range(reapers)]
    fleet = [Reaper(e, max_task_seconds=600, redis_url=REDIS_URL) for e in engines]
    admin = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + BENCH_DB)
    try:
        for reaper in fleet:
            await reaper.start()
        await asyncio.sleep(6)  # every reaper has connected and run once
        before = {pid: _cpu_seconds(pid) for pid in await _backends(admin)}
        started = time.monotonic()
        await asyncio.sleep(seconds)
        after = {pid: _cpu_seconds(pid) for pid in await _backends(admin)}
        elapsed = time.monotonic() - started
    finally:
        for reaper, engine in zip(fleet, engines, strict=True):
            await reaper.stop()
            await engine.dispose()
        await admin.close()
    used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    passes = sum(getattr(r, "passes", 0) for r in fleet)
    print(
        f"reapers={reapers} pending={pending}: PostgreSQL backends {used * 1e6 / elapsed:,.0f} "
        f"µs CPU/s ({used * 1e6 / elapsed / reapers:,.0f} per reaper-second) over "
        f"{elapsed:.1f} s; fleet-wide passes counted: {passes or 'n/a'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reapers", type=int, default=20)
    parser.add_argument("--pending", type=int, default=30_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-setup", action="store_true", help="use the rows already there")
    a = parser.parse_args()
    asyncio.run(run(a.reapers, a.pending, a.seconds, not a.no_setup))


if __name__ == "__main__":
    main()
