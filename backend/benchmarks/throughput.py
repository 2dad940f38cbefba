"""No-op task throughput through a real `taskiq worker`, with and without TaskLensMiddleware.

Each run enqueues N tasks first (the client side, with the middleware when it is on), then
starts one worker process and times it from its first delivery until the stream is drained
and, with the middleware, until every task's row is `success` in PostgreSQL. Runs alternate
(without, with, without, …) so drift on the shared machine hits both alike.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from tasklens.tracking.database import connect_postgres

BACKEND = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    middleware: bool
    tasks: int
    seconds: float
    cpu_seconds: float  # the worker processes' user + system time over the same span

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds

    @property
    def cpu_us_per_task(self) -> float:
        return self.cpu_seconds / self.tasks * 1e6


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(parent: int) -> float:
    """User + system time of `parent`'s child processes (taskiq forks the workers), from
    /proc: on a shared host, wall time swings ±15 % between runs while the CPU each task
    costs the worker stays steadier."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


async def _enqueue(n: int, middleware: bool, redis_url: str, database_url: str) -> None:
    os.environ["BENCH_MIDDLEWARE"] = "1" if middleware else "0"
    os.environ["BENCH_REDIS_URL"] = redis_url
    os.environ["BENCH_DATABASE_URL"] = database_url
    sys.modules.pop("benchmarks.throughput_app", None)  # re-read BENCH_MIDDLEWARE
    throughput_app = importlib.import_module("benchmarks.throughput_app")

    await throughput_app.broker.startup()
    for start in range(0, n, 500):
        await asyncio.gather(*(throughput_app.noop.kiq() for _ in range(min(500, n - start))))
    await throughput_app.broker.shutdown()  # flushes the `pending` rows
    sys.modules.pop("benchmarks.throughput_app", None)


async def _group_state(redis: Redis) -> tuple[int, int]:
    """(entries read by the group, entries still pending or unread)."""
    [group] = await redis.xinfo_groups("bench")
    return int(group["entries-read"] or 0), int(group["lag"] or 0) + int(group["pending"])


async def one_run(n: int, middleware: bool, redis_url: str, database_url: str, workers: int) -> Run:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    pg = await connect_postgres(database_url)
    await pg.execute("TRUNCATE task_execution_logs, task_log_counts")
    await _enqueue(n, middleware, redis_url, database_url)
    env = {
        **os.environ,
        "BENCH_MIDDLEWARE": "1" if middleware else "0",
        "BENCH_REDIS_URL": redis_url,
        "BENCH_DATABASE_URL": database_url,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "taskiq",
            "worker",
            "benchmarks.throughput_app:broker",
            "--workers",
            str(workers),
            "--max-async-tasks",
            "100",
            "--ack-type",
            "when_saved",
            "--log-level",
            "WARNING",
        ],
        cwd=BACKEND,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while (await _group_state(redis))[0] == 0:
            await asyncio.sleep(0.005)
        started = time.perf_counter()
        cpu_started = _cpu_seconds(worker.pid)
        while (await _group_state(redis))[1] > 0:
            await asyncio.sleep(0.01)
        if middleware:
            query = "SELECT count(*) FROM task_execution_logs WHERE status = 'success'"
            while await pg.fetchval(query) < n:
                await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        cpu_seconds = _cpu_seconds(worker.pid) - cpu_started
    finally:
        worker.terminate()
        worker.wait(30)
        await redis.aclose()
        await pg.close()
    return Run(middleware, n, seconds, cpu_seconds)


async def run(
    redis_url: str, database_url: str, tasks: int, rounds: int, workers: int
) -> dict[str, float]:
    runs: list[Run] = []
    for i in range(rounds):
        for middleware in (False, True):
            result = await one_run(tasks, middleware, redis_url, database_url, workers)
            runs.append(result)
            label = "with middleware" if middleware else "raw taskiq    "
            print(
                f"  round {i + 1} {label}: {result.rate:8.0f} tasks/s "
                f"({tasks} tasks in {result.seconds:.2f}s), "
                f"worker CPU {result.cpu_us_per_task:5.0f} µs/task",
                flush=True,
            )
    raw_runs = [r for r in runs if not r.middleware]
    mw_runs = [r for r in runs if r.middleware]
    raw = statistics.median(r.rate for r in raw_runs)
    with_mw = statistics.median(r.rate for r in mw_runs)
    raw_cpu = statistics.median(r.cpu_us_per_task for r in raw_runs)
    mw_cpu = statistics.median(r.cpu_us_per_task for r in mw_runs)
    return {
        "raw_tasks_per_s": raw,
        "middleware_tasks_per_s": with_mw,
        "ratio": with_mw / raw,
        # Each round's pair run back to back, so drift between rounds cancels out.
        "paired_ratio": statistics.median(
            m.rate / r.rate for r, m in zip(raw_runs, mw_runs, strict=True)
        ),
        "raw_cpu_us_per_task": raw_cpu,
        "middleware_cpu_us_per_task": mw_cpu,
        "cpu_ratio": raw_cpu / mw_cpu,
    }
