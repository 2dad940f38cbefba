"""No-op task throughput through a real worker process, in four arms:

- `raw`: a stock taskiq-redis `RedisStreamBroker` worker, no middleware (the baseline);
- `middleware`: the same broker with TaskLensMiddleware added (what monitoring costs an app);
- `tasklens`: `tasklens worker` itself (its broker, reaper, retries and middleware, as
  `tasklens.process.worker_broker` wires them: rows, live events, heartbeats);
- `beside`: the stock worker again, while this process makes the writes the middleware's
  recorder would (`log_load.py`): the middleware arm against it is what the middleware costs
  in its own process, with PostgreSQL's and Redis's work on the log sharing the worker's
  cores in both.

Four more arms split the middleware's cost (`--arms raw,empty,stamp,idle,hooks,middleware`,
here and in `benchmarks.instructions`; not in the default run), each on the stock broker:
`empty`, a middleware whose hooks return at once (what taskiq's calling of any middleware
costs); `stamp`, one that only times each task (the least any per-task monitor does);
`idle`, TaskLensMiddleware with hooks that return at once (its recorder loop, cancel listener,
heartbeat); `hooks`, TaskLensMiddleware whose recorder drops every change at the flush,
unbuilt (no merge, no events, no rows).

Every arm runs one worker process with the same `--max-async-tasks` and `--ack-type
when_saved`. Each run enqueues N tasks first (through the client side of the arm's broker,
so `pending` rows exist as in real use), then starts the worker and times it from its first
delivery until the stream is drained and, with monitoring, until every task's row is
`success` in PostgreSQL. Runs alternate (raw, middleware, tasklens, raw, …) so drift on the
shared machine hits every arm alike; each round starts with the next arm (no arm always
runs first, on caches another arm left), and a first warm-up round of every arm is run and
left out (cold database, Redis and page cache). The ratios are reported both from each arm's
median and as the median of each round's pair, which drift between rounds does not move.
Each run also says where its CPU went a task (the worker, PostgreSQL, Redis) and, for the
arms that log, how long after the stream's drain the last row was written: a fixed wait a
run has once, a larger share of a short run's time. And how much of the machine's CPU time
the hypervisor gave other guests meanwhile (steal): on a shared host such spells raise the
CPU a task of whichever arm they hit; `--tries` runs a run they hit again.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncpg
from redis.asyncio import Redis

from benchmarks.log_load import LogLoad
from tasklens.tracking.database import connect_postgres

BACKEND = Path(__file__).resolve().parents[1]
ARMS = ("raw", "beside", "middleware", "tasklens")
# The arms that split the middleware's cost (the module's docstring), not in the default run.
SPLITTING_ARMS = ("empty", "stamp", "idle", "hooks")
# The value of BENCH_MIDDLEWARE (throughput_app.py) for each arm on the stock broker.
_MIDDLEWARE = {"middleware": "1", **{arm: arm for arm in SPLITTING_ARMS}}
# Every arm a benchmark built on `one_run` takes (`--arms`).
KNOWN_ARMS = ("raw", *SPLITTING_ARMS, "beside", "middleware", "tasklens")

# The arms whose every task ends as a `success` row (`beside`'s written by the log's load).
LOGGED_ARMS = ("beside", "middleware", "tasklens")
CONCURRENCY = 100  # every arm's --max-async-tasks
TASKLENS_QUEUE = "tasklens"  # the default queue of `tasklens worker` (its default priority)
# With TRIES above 1, a run whose machine lost more than this share of its CPU time to other
# guests (steal) is run again, up to TRIES in all; see `undisturbed_run`. One try by default:
# every run is kept, as before, and its steal is printed beside it.
MAX_STEAL = 0.01
TRIES = 1


def unknown_arms(arms: Sequence[str]) -> str | None:
    """The error for `--arms` naming an arm `one_run` does not know (it would run as stock,
    under its own label), else None."""
    unknown = [arm for arm in arms if arm not in KNOWN_ARMS]
    if not unknown:
        return None
    return f"--arms: unknown {', '.join(unknown)} (known: {', '.join(KNOWN_ARMS)})"


def runs_parser(
    doc: str, *, tasks: int, rounds: int, arms: Sequence[str]
) -> argparse.ArgumentParser:
    """`--tasks`, `--rounds` and `--arms`, as a benchmark made of `one_run`s takes them."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=tasks)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--arms", default=",".join(arms), help="comma-separated, e.g. raw,hooks")
    return parser


def chosen_arms(parser: argparse.ArgumentParser, arms: str) -> list[str]:
    """`--arms` as a list; an unknown arm stops the command with the parser's error."""
    chosen = arms.split(",")
    if error := unknown_arms(chosen):
        parser.error(error)
    return chosen


def compared_arms(parser: argparse.ArgumentParser, arms: str) -> tuple[str, ...]:
    """`bench throughput --arms`: known arms, each once, with stock among them (every ratio
    is against it); otherwise the command stops with the parser's error."""
    chosen = chosen_arms(parser, arms)
    if twice := sorted({arm for arm in chosen if chosen.count(arm) > 1}):
        parser.error(f"--arms: {', '.join(twice)} named more than once")
    if "raw" not in chosen:
        parser.error("--arms: raw (stock taskiq-redis, the baseline of every ratio) is missing")
    return tuple(chosen)


@dataclass
class Cpu:
    """CPU seconds so far, from /proc: the worker processes' (user and system), and those of
    every local PostgreSQL and Redis server process. On a shared host, wall time swings
    ±15 % between runs while the CPU each task costs stays steadier; and with the servers on
    the worker's cores, what they spend on the worker's writes is CPU the worker waits for.
    A server process that exits during a run (an autovacuum worker) takes its share with
    it; servers on another host show 0."""

    worker_user: float = 0.0
    worker_system: float = 0.0
    postgres: float = 0.0
    redis: float = 0.0
    # the whole machine's, all CPUs (/proc/stat): time the hypervisor ran another guest on
    # them while this one had work (steal), and all time
    steal: float = 0.0
    machine: float = 0.0

    def __sub__(self, before: Cpu) -> Cpu:
        return Cpu(
            self.worker_user - before.worker_user,
            self.worker_system - before.worker_system,
            self.postgres - before.postgres,
            self.redis - before.redis,
            self.steal - before.steal,
            self.machine - before.machine,
        )

    @property
    def steal_share(self) -> float:
        return self.steal / self.machine if self.machine else 0.0


@dataclass
class Run:
    arm: str
    tasks: int
    seconds: float
    cpu: Cpu  # over the same span
    # until the stream was drained: with monitoring on the stock broker, the rows' last write
    # comes after it (the recorder's tick and write), a wait a run has once, not each task
    drained_seconds: float

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds

    @property
    def cpu_us_per_task(self) -> float:
        """The worker's user + system time a task: target 1's CPU figure."""
        return self.us_per_task(self.cpu.worker_user + self.cpu.worker_system)

    def us_per_task(self, seconds: float) -> float:
        return seconds / self.tasks * 1e6


_TICKS = os.sysconf("SC_CLK_TCK")


def process_times(stat: str) -> tuple[str, int, float, float]:
    """A `/proc/<pid>/stat`'s command name, parent pid, and user and system CPU seconds."""
    name, fields = stat[stat.find("(") + 1 : stat.rfind(")")], stat.rsplit(")", 1)[1].split()
    return name, int(fields[1]), int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def _cpu(parent: int) -> Cpu:
    """`parent`'s child processes are the workers (taskiq forks them)."""
    cpu = Cpu()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, ppid, user, system = process_times(stat.read_text())
        except OSError:
            continue
        if ppid == parent:
            cpu.worker_user += user
            cpu.worker_system += system
        elif name.startswith("postgres"):
            cpu.postgres += user + system
        elif name.startswith("redis-server"):
            cpu.redis += user + system
    times = [int(f) / _TICKS for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    cpu.steal, cpu.machine = times[7], sum(times)
    return cpu


def _environment(arm: str, redis_url: str, database_url: str) -> dict[str, str]:
    """The variables an arm's app module reads (the `tasklens` arm: TaskLens's settings)."""
    return {
        "BENCH_MIDDLEWARE": _MIDDLEWARE.get(arm, "0"),
        "BENCH_REDIS_URL": redis_url,
        "BENCH_DATABASE_URL": database_url,
        "TASKLENS_REDIS_URL": redis_url,
        "TASKLENS_DATABASE_URL": database_url,
        "TASKLENS_QUEUE_NAME": TASKLENS_QUEUE,
        "TASKLENS_WORKER_CONCURRENCY": str(CONCURRENCY),
    }


def _app_module(arm: str) -> str:
    return f"benchmarks.throughput{'_tasklens' if arm == 'tasklens' else ''}_app"


async def _enqueue(n: int, arm: str, redis_url: str, database_url: str) -> None:
    os.environ.update(_environment(arm, redis_url, database_url))
    name = _app_module(arm)
    sys.modules.pop(name, None)  # re-read BENCH_MIDDLEWARE
    app = importlib.import_module(name)

    await app.broker.startup()
    for start in range(0, n, 500):
        await asyncio.gather(*(app.noop.kiq() for _ in range(min(500, n - start))))
    await app.broker.shutdown()  # flushes the `pending` rows
    sys.modules.pop(name, None)


def _worker_command(arm: str, workers: int) -> list[str]:
    if arm == "tasklens":  # `tasklens worker`'s own command, on the app with the no-op task
        return [
            sys.executable,
            "-c",
            "from tasklens.cli import run_worker; from tasklens.settings import get_settings; "
            f"raise SystemExit(run_worker(get_settings(), {workers}, 30.0, 30.0, None, "
            "'benchmarks.throughput_tasklens_app:broker'))",
        ]
    return [
        sys.executable,
        "-m",
        "taskiq",
        "worker",
        "benchmarks.throughput_app:broker",
        "--workers",
        str(workers),
        "--max-async-tasks",
        str(CONCURRENCY),
        "--ack-type",
        "when_saved",
        "--log-level",
        "WARNING",
    ]


async def _group_state(redis: Redis, stream: str, group: str) -> tuple[int, int]:
    """(entries read by the group, entries still pending or unread)."""
    [state] = await redis.xinfo_groups(stream)
    assert _text(state["name"]) == group
    return int(state["entries-read"] or 0), int(state["lag"] or 0) + int(state["pending"])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def queued(
    n: int, arm: str, redis_url: str, database_url: str
) -> tuple[Redis, asyncpg.Connection, str, str]:
    """An empty Redis DB and log, then `n` tasks enqueued for `arm`: the clients, and the
    stream and consumer group its worker reads."""
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    pg = await connect_postgres(database_url)
    await pg.execute("TRUNCATE task_execution_logs, task_log_counts")
    # `beside`'s messages are sent as the middleware arm's are: with their `pending` rows
    await _enqueue(n, "middleware" if arm == "beside" else arm, redis_url, database_url)
    stream, group = (TASKLENS_QUEUE, "tasklens") if arm == "tasklens" else ("bench", "bench")
    return redis, pg, stream, group


_SUCCEEDED = "SELECT count(*) FROM task_execution_logs WHERE status = 'success'"


async def one_run(n: int, arm: str, redis_url: str, database_url: str, workers: int) -> Run:
    redis, pg, stream, group = await queued(n, arm, redis_url, database_url)
    load = None
    if arm == "beside":  # built before the worker starts: none of it in the timed span
        load_redis, load_pg = Redis.from_url(redis_url), await connect_postgres(database_url)
        log_load = await LogLoad.of_stream(load_redis, stream)

        async def finished() -> int:
            return n - (await _group_state(load_redis, stream, group))[1]

        load = asyncio.create_task(log_load.send(load_redis, load_pg, finished))
    worker = subprocess.Popen(
        _worker_command(arm, workers),
        cwd=BACKEND,
        env={**os.environ, **_environment(arm, redis_url, database_url)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while (await _group_state(redis, stream, group))[0] == 0:
            if worker.poll() is not None:
                raise RuntimeError(f"the {arm} worker exited with {worker.returncode}")
            await asyncio.sleep(0.005)
        started = time.perf_counter()
        cpu_started = _cpu(worker.pid)
        while (await _group_state(redis, stream, group))[1] > 0:
            await asyncio.sleep(0.01)
        drained = time.perf_counter() - started
        if arm in LOGGED_ARMS:
            while await pg.fetchval(_SUCCEEDED) < n:
                if load is not None and load.done():
                    load.result()  # raises what stopped it
                    raise RuntimeError(f"the log's load ended before {n} rows were `success`")
                await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        cpu = _cpu(worker.pid) - cpu_started
    finally:
        worker.terminate()
        worker.wait(30)
        if load is not None:
            load.cancel()
            await load_redis.aclose()
            await load_pg.close()
        await redis.aclose()
        await pg.close()
    return Run(arm, n, seconds, cpu, drained)


LABELS = {
    "raw": "stock taskiq-redis ",
    "middleware": "+ TaskLensMiddleware",
    "tasklens": "tasklens worker    ",
    "beside": "stock beside the log",
    "empty": "+ a no-op middleware",
    "stamp": "+ a timing middleware",
    "idle": "+ TaskLens, no hooks",
    "hooks": "+ TaskLens hooks    ",
}


def _line(label: str, result: Run, note: str) -> str:
    return (
        f"  {label} {LABELS[result.arm]}: {result.rate:8.0f} tasks/s ({result.tasks} tasks in "
        f"{result.seconds:.2f}s), worker CPU {result.cpu_us_per_task:5.0f} µs/task (system "
        f"{result.us_per_task(result.cpu.worker_system):3.0f}), PostgreSQL "
        f"{result.us_per_task(result.cpu.postgres):3.0f}, Redis "
        f"{result.us_per_task(result.cpu.redis):3.0f}, steal {result.cpu.steal_share:4.1%}"
        + (
            f"; rows written {(result.seconds - result.drained_seconds) * 1000:3.0f} ms after "
            "the drain"
            if result.arm in LOGGED_ARMS
            else ""
        )
        + note
    )


async def undisturbed_run(
    label: str,
    arm: str,
    tasks: int,
    redis_url: str,
    database_url: str,
    workers: int,
    max_steal: float,
    tries: int,
) -> tuple[Run, Run]:
    """(the first try, the least stolen of up to `tries`): a run during which the hypervisor
    gave more than `max_steal` of the machine to other guests is run again. On a shared host
    those spells come and go by the minute and raise a worker's CPU a task along with them,
    whichever arm is running: the neighbours' load, not the code's."""
    runs: list[Run] = []
    while True:
        result = await one_run(tasks, arm, redis_url, database_url, workers)
        runs.append(result)
        stolen = result.cpu.steal_share > max_steal
        again = stolen and len(runs) < tries
        note = f" (steal above {max_steal:.1%}: {'again' if again else 'the least stolen kept'})"
        print(_line(label, result, note if stolen and tries > 1 else ""), flush=True)
        if not again:
            return runs[0], min(runs, key=lambda r: r.cpu.steal_share)


# A line through an arm's runs (worker CPU a task against steal) is drawn only when the runs
# spread over at least this much steal: through points bunched at one steal, its slope, and so
# where it meets no steal, is the noise's.
MIN_STEAL_SPREAD = 0.01
MIN_RUNS_FOR_LINE = 4


def cpu_at_no_steal(runs: Sequence[Run]) -> float | None:
    """Worker CPU a task where a straight line through the runs' (steal, CPU a task) meets no
    steal; None when the runs are too few or too alike in steal for a line. On a shared host
    a run's CPU a task rises with its steal (the neighbours' load, not the code's): the
    line takes that out of a comparison whose arms met different spells of it."""
    steal = [r.cpu.steal_share for r in runs]
    if len(runs) < MIN_RUNS_FOR_LINE or max(steal) - min(steal) < MIN_STEAL_SPREAD:
        return None
    line = statistics.linear_regression(steal, [r.cpu_us_per_task for r in runs])
    return line.intercept


# The least confidence an interval for a median of per-round ratios is given at.
INTERVAL_CONFIDENCE = 0.9


def median_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(low, high, confidence): the narrowest interval between two of the sorted `values`
    that holds their distribution's median with at least INTERVAL_CONFIDENCE (or, with too
    few values for that, the whole range and what confidence it has). Distribution-free:
    each value falls on either side of the median with even odds, so the k-th smallest and
    k-th largest enclose it unless at most k - 1 fall on one side (a binomial tail). Written
    here rather than taken from scipy, a large dependency for these few lines."""
    ordered, n = sorted(values), len(values)

    def confidence(k: int) -> float:
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2.0**n

    k = 1
    while k < n // 2 and confidence(k + 1) >= INTERVAL_CONFIDENCE:
        k += 1
    return ordered[k - 1], ordered[n - k], confidence(k)


def _figures(runs: list[Run], arms: tuple[str, ...], prefix: str = "") -> dict[str, float]:
    by_arm = {arm: [r for r in runs if r.arm == arm] for arm in arms}
    figures: dict[str, float] = {}
    for arm, arm_runs in by_arm.items():
        if (at_no_steal := cpu_at_no_steal(arm_runs)) is not None:
            figures[f"{prefix}{arm}_cpu_us_at_no_steal"] = at_no_steal
        figures[f"{prefix}{arm}_tasks_per_s"] = statistics.median(r.rate for r in arm_runs)
        figures[f"{prefix}{arm}_cpu_us_per_task"] = statistics.median(
            r.cpu_us_per_task for r in arm_runs
        )
        figures[f"{prefix}{arm}_steal"] = statistics.median(r.cpu.steal_share for r in arm_runs)
        figures[f"{prefix}{arm}_tail_ms"] = statistics.median(
            (r.seconds - r.drained_seconds) * 1000 for r in arm_runs
        )
        for part in ("worker_system", "postgres", "redis"):
            figures[f"{prefix}{arm}_{part}_us_per_task"] = statistics.median(
                r.us_per_task(getattr(r.cpu, part)) for r in arm_runs
            )
    for arm in arms:
        if arm != "raw":
            _ratios(figures, by_arm, prefix, "raw", arm, arm)
    if "beside" in by_arm and "middleware" in by_arm:
        _ratios(figures, by_arm, prefix, "beside", "middleware", "middleware_beside")
    return figures


class Measured(Protocol):
    """What a paired ratio reads of a run: a `Run`, or one read back from its printed line."""

    @property
    def rate(self) -> float: ...

    @property
    def cpu_us_per_task(self) -> float: ...


def paired_ratios(pairs: Sequence[tuple[Measured, Measured]]) -> tuple[list[float], list[float]]:
    """Each (stock, arm) pair's tasks/s ratio and CPU-a-task ratio, both as arm against stock
    (above 1 when the arm is faster)."""
    return (
        [arm.rate / stock.rate for stock, arm in pairs],
        [stock.cpu_us_per_task / arm.cpu_us_per_task for stock, arm in pairs],
    )


def _ratios(
    figures: dict[str, float],
    by_arm: dict[str, list[Run]],
    prefix: str,
    base: str,
    arm: str,
    name: str,
) -> None:
    """`arm`'s tasks/s and CPU a task against `base`'s, as the figures `{prefix}{name}_…`:
    from the arms' medians, paired per round, and at no steal."""
    p, b, a = f"{prefix}{name}", f"{prefix}{base}", f"{prefix}{arm}"
    figures[f"{p}_ratio"] = figures[f"{a}_tasks_per_s"] / figures[f"{b}_tasks_per_s"]
    pairs = list(zip(by_arm[base], by_arm[arm], strict=True))
    figures[f"{p}_cpu_ratio"] = figures[f"{b}_cpu_us_per_task"] / figures[f"{a}_cpu_us_per_task"]
    # Each round's runs go back to back, so drift between rounds cancels out.
    rate, cpu = paired_ratios(pairs)
    for figure, ratios in (("paired_ratio", rate), ("paired_cpu_ratio", cpu)):
        figures[f"{p}_{figure}"] = statistics.median(ratios)
        low, high, confidence = median_interval(ratios)
        figures[f"{p}_{figure}_low"], figures[f"{p}_{figure}_high"] = low, high
        figures[f"{p}_{figure}_confidence"] = confidence
    lines = (f"{b}_cpu_us_at_no_steal", f"{a}_cpu_us_at_no_steal")
    if all(line in figures for line in lines):
        figures[f"{p}_cpu_ratio_at_no_steal"] = figures[lines[0]] / figures[lines[1]]


async def run(
    redis_url: str,
    database_url: str,
    tasks: int,
    rounds: int,
    workers: int,
    arms: tuple[str, ...] = ARMS,
    warmup: bool = True,
    max_steal: float = MAX_STEAL,
    tries: int = TRIES,
) -> dict[str, float]:
    """The figures of the runs kept (the least stolen try of each), and the same prefixed
    `first_` from each run's first try: what the bench gives with no run repeated."""
    first: list[Run] = []
    kept: list[Run] = []
    for i in range(-1 if warmup else 0, rounds):
        shift = max(i, 0) % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            label = f"round {i + 1}" if i >= 0 else "warm-up"
            if i < 0:
                warm = await one_run(tasks, arm, redis_url, database_url, workers)
                print(_line(label, warm, ""), flush=True)
                continue
            one, least = await undisturbed_run(
                label, arm, tasks, redis_url, database_url, workers, max_steal, tries
            )
            first.append(one)
            kept.append(least)
    figures = _figures(kept, arms) | _figures(first, arms, "first_")
    figures["runs"] = len(kept)
    figures["runs_stolen"] = sum(r.cpu.steal_share > max_steal for r in first)
    figures["runs_kept_stolen"] = sum(r.cpu.steal_share > max_steal for r in kept)
    figures["max_steal"] = max_steal
    return figures
