"""Issue 17's overhead in instructions: what a task costs the worker with and without
TaskLensMiddleware, counted by valgrind rather than timed, so the machine's load does not
move it (wall-clock CPU per task swings more between runs on a shared host than the
difference sought).

`python -m benchmarks.instructions [--small N] [--big M] [--arms raw,middleware]` (the
arms `empty`, `stamp`, `idle` and `hooks` split the middleware's cost:
benchmarks/throughput.py): for each arm of `bench throughput` (same app, broker, options and
drain), the worker process runs under callgrind twice, draining N and then M no-op tasks; the
difference of its instruction counts over M - N tasks is the cost of a task, start-up and
shutdown cancelled out.
Valgrind slows the worker about fifty-fold, and the recorder's tick and write intervals are
stretched by `--dilation` (default 50) so that its batches hold as many tasks as at full
speed: per-batch costs are then spread as in a real run. The timers that run per second
rather than per task (the spill's drain, the heartbeat, the cancel listener's poll) are
stretched alike (throughput_app.py), else each would run fifty times as often per task.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import tempfile
from pathlib import Path

from benchmarks.bench_database import REDIS_URL, fresh_database
from benchmarks.throughput import (
    BACKEND,
    LOGGED_ARMS,
    _environment,
    _group_state,
    _worker_command,
    queued,
    unknown_arms,
)
from tasklens import migrate

_TOTALS = re.compile(r"^totals: (\d+)", re.MULTILINE)
# How long a stopped worker under callgrind gets to exit before it counts as hung, and how
# many times a measure is taken when its worker hangs.
STOP_SECONDS = 600
TRIES = 3


class WorkerOutlivedItsStop(RuntimeError):
    """The worker drained its tasks but did not exit after SIGTERM. Seen under valgrind:
    a cancel lost in the broker's read loop (specs/issue17/worker-stop.md) leaves it reading
    for ever; callgrind writes its counts only at exit, so the measure is taken again."""


async def worker_instructions(n: int, arm: str, database_url: str, dilation: float) -> int:
    """Instructions the arm's worker process (taskiq's forked child) spent, from its start
    until it was stopped after draining `n` tasks (and, with monitoring, their rows)."""
    redis, pg, stream, group = await queued(n, arm, REDIS_URL, database_url)
    with tempfile.TemporaryDirectory(prefix="tasklens-callgrind-") as out:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.%p",
            "--trace-children=yes",
            *_worker_command(arm, 1),
        ]
        env = {
            **os.environ,
            **_environment(arm, REDIS_URL, database_url),
            "BENCH_TIME_DILATION": str(dilation),
            # the `tasklens` arm's recorder reads its settings
            "TASKLENS_EVENT_FLUSH_INTERVAL_MS": str(round(25 * dilation)),
            "TASKLENS_LOG_WRITE_INTERVAL_MS": str(round(100 * dilation)),
        }
        worker = subprocess.Popen(
            command, cwd=BACKEND, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while True:
                delivered, left = await _group_state(redis, stream, group)
                if delivered and not left:
                    break
                if worker.poll() is not None:
                    raise RuntimeError(f"the {arm} worker exited with {worker.returncode}")
                await asyncio.sleep(0.2)
            if arm in LOGGED_ARMS:
                query = "SELECT count(*) FROM task_execution_logs WHERE status = 'success'"
                while await pg.fetchval(query) < n:
                    await asyncio.sleep(0.2)
        finally:
            worker.terminate()
            try:
                worker.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                # its child first: once taskiq's process manager is gone, it has another parent
                subprocess.run(["pkill", "-KILL", "-P", str(worker.pid)], check=False)
                worker.kill()
                worker.wait()
                raise WorkerOutlivedItsStop(f"the {arm} worker did not exit") from None
            finally:
                await redis.aclose()
                await pg.close()
        counts = [
            int(match[1])
            for path in Path(out).glob("callgrind.*")
            if (match := _TOTALS.search(path.read_text(errors="replace")))
        ]
    # The biggest process is the forked worker; the others are taskiq's process manager.
    return max(counts)


async def _measured(n: int, arm: str, database_url: str, dilation: float) -> int:
    for _ in range(TRIES - 1):
        try:
            return await worker_instructions(n, arm, database_url, dilation)
        except WorkerOutlivedItsStop as hung:
            print(f"instructions: {hung} within {STOP_SECONDS} s; measured again", flush=True)
    return await worker_instructions(n, arm, database_url, dilation)  # the last try raises


async def run(
    database_url: str, small: int, big: int, arms: list[str], dilation: float
) -> dict[str, float]:
    per_task: dict[str, float] = {}
    for arm in arms:
        low = await _measured(small, arm, database_url, dilation)
        high = await _measured(big, arm, database_url, dilation)
        per_task[arm] = (high - low) / (big - small)
        print(f"instructions: {arm}: {per_task[arm]:,.0f} a task", flush=True)
    return per_task


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.instructions")
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=3_000)
    parser.add_argument("--arms", default="raw,middleware")
    parser.add_argument("--dilation", type=float, default=50.0)
    a = parser.parse_args()
    arms = a.arms.split(",")
    if error := unknown_arms(arms):
        parser.error(error)
    if "beside" in arms:  # its load comes from the benchmark's process: not counted here
        parser.error("--arms: beside is `bench throughput`'s arm only")
    print(
        f"instructions: worker per no-op task, {a.big:,} - {a.small:,} tasks under callgrind, "
        f"arms {', '.join(arms)}; the recorder's intervals stretched {a.dilation:g}-fold",
        flush=True,
    )
    database_url = asyncio.run(fresh_database())
    migrate.upgrade(database_url)
    per_task = asyncio.run(run(database_url, a.small, a.big, arms, a.dilation))
    if "raw" in per_task:
        for arm, count in per_task.items():
            if arm != "raw":
                print(
                    f"instructions: {arm} vs stock: {count - per_task['raw']:,.0f} more a task, "
                    f"ratio {per_task['raw'] / count:.3f} (target 1: >= 0.95)"
                )


if __name__ == "__main__":
    main()
