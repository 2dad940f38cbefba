"""A fleet of worker processes on one machine, and the capacity model that predicts it
(specs/scaling.md).

Each run: M `demo.noop` tasks are enqueued through the production broker and middleware
(client side: `pending` rows, events) into a paused queue; K real `tasklens worker`
processes start and report their heartbeat; the queue is resumed and timed from the first
delivery until the stream is drained and every row is `success`. Over that span it reads the
CPU time (`/proc`, user + system) of each part: the worker processes, the PostgreSQL backends
connected to the benchmark's database, and a private `redis-server` started for the run (its
CPU is then this benchmark's alone), plus Redis's `INFO commandstats`.

The model: each part costs `a` µs of CPU per task and `s` µs per flush a worker writes (its
row statement, its XACK, the event XADDs of the ticks between), which a busy worker makes on
its write interval however few tasks each carries: with more workers, fewer rows per write.
`a` and `s` come from two calibration runs (1 and a few workers); the fleet run (20 workers)
is the check. On C shared cores, with W = K busy workers x their writes per second, the
fleet's rate is (C·10⁶ - W·Σs) / Σa tasks/s, capped by each worker process's one core and by
Redis's one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from taskiq import AsyncBroker

from benchmarks.throughput import BACKEND, _cpu_seconds
from tasklens.broker import STREAM_MAXLEN, TaskLensStreamBroker
from tasklens.settings import Settings
from tasklens.tasks import demo
from tasklens.tracking.database import connect_postgres
from tasklens.tracking.middleware import TaskLensMiddleware
from tasklens.tracking.redis_keys import PAUSED_QUEUES, WORKERS

# Sends in flight at once: each holds a pooled Redis connection, and hundreds of connects at
# once time out on a busy machine.
ENQUEUE_AT_ONCE = 50
PARTS = ("workers", "postgres", "redis")
GROUP = "tasklens"  # the production consumer group (process.build_broker)
_TICKS = os.sysconf("SC_CLK_TCK")
# Redis commands whose calls per task and µs per call the model's tables quote.
COMMANDS = ("xadd", "xreadgroup", "xack", "evalsha", "smembers", "xautoclaim")


def _own_cpu(pid: int) -> float:
    """User + system seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _tree_cpu(pids: Iterable[int]) -> float:
    """Each `tasklens worker` process and the worker it forks."""
    return sum(_own_cpu(pid) + _cpu_seconds(pid) for pid in pids)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Drain:
    """One measured span: tasks finished, wall seconds, CPU seconds of each part."""

    workers: int
    tasks: int
    seconds: float
    cpu: dict[str, float]
    calls: dict[str, tuple[int, float]] = field(default_factory=dict)  # command: (calls, usec)

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds

    def us_per_task(self, part: str) -> float:
        return self.cpu[part] / self.tasks * 1e6

    def us_per_second(self, part: str) -> float:
        return self.cpu[part] / self.seconds * 1e6

    @property
    def writes(self) -> int:
        """Flushes the workers wrote: each acknowledges its messages in one XACK once its
        rows are durable (one stream here)."""
        return self.calls.get("xack", (0, 0.0))[0]


@dataclass(frozen=True)
class Costs:
    """One part's unit costs: µs of CPU per task, and per flush a worker writes (its row
    statement, its XACK, the event XADDs of the ticks between: costs a busy worker pays
    however few tasks each flush carries)."""

    per_task: float
    per_write: float


def fit(one: Drain, other: Drain) -> dict[str, Costs]:
    """Each part's CPU rate is a·X + s·W (X tasks/s, W flushes written per second, counted
    as XACK calls): two runs with different numbers of workers, so different rows per
    write, give a and s. A negative s (noise: the per-write cost is small against the
    per-task one) is taken as 0 and a as the mean of both runs' CPU per task."""
    costs = {}
    for part in PARTS:
        r1, r2 = one.us_per_second(part), other.us_per_second(part)
        w1, w2 = one.writes / one.seconds, other.writes / other.seconds
        det = one.rate * w2 - other.rate * w1
        a = (r1 * w2 - r2 * w1) / det if det else 0.0
        per_write = (r1 - a * one.rate) / w1 if w1 else 0.0
        if per_write < 0 or a <= 0:
            a, per_write = (one.us_per_task(part) + other.us_per_task(part)) / 2, 0.0
        costs[part] = Costs(a, per_write)
    return costs


@dataclass(frozen=True)
class Prediction:
    rate: float
    limit: str  # which bound set it


def _rate(a: float, s: float, budget: float, writes: float | None, most_writes: float) -> float:
    """Tasks/s that a budget of µs of CPU per second pays for at a µs per task and s per
    write: at `writes` per second when known, else at `most_writes` (every busy worker on
    its write interval) unless that is more writes than tasks (then one row per write)."""
    if writes is not None:
        return max((budget - s * writes) / a, 0.0)
    rate = (budget - s * most_writes) / a
    return rate if rate >= most_writes else budget / (a + s)


def predict(
    costs: dict[str, Costs],
    workers: int,
    cores: float,
    writes_per_worker_second: float,
    writes: float | None = None,
) -> Prediction:
    """Tasks/s of `workers` processes sharing `cores` with PostgreSQL and Redis: the CPU
    left after the flushes, divided by the CPU every part spends per task; no worker
    process above one core, nor Redis (one thread). Busy workers write
    `writes_per_worker_second` flushes each (TASKLENS_LOG_WRITE_INTERVAL_MS), or `writes`
    per second in all when measured."""
    most = workers * writes_per_worker_second
    total = Costs(sum(c.per_task for c in costs.values()), sum(c.per_write for c in costs.values()))
    w, r = costs["workers"], costs["redis"]
    bounds = {
        f"{cores:g} shared cores": _rate(
            total.per_task, total.per_write, cores * 1e6, writes, most
        ),
        "one core per worker process": _rate(w.per_task, w.per_write, workers * 1e6, writes, most),
        "one Redis core": _rate(r.per_task, r.per_write, 1e6, writes, most),
    }
    limit = min(bounds, key=lambda name: bounds[name])
    return Prediction(bounds[limit], limit)


class PrivateRedis:
    """A `redis-server` of the benchmark's own: Redis is one thread shared by everyone on
    the shared one, so only a private one's CPU is this run's."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("bench fleet: needs redis-server on PATH (a private one is started)")
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=(workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    async def ready(self) -> Redis:
        redis = Redis.from_url(self.url)
        for _ in range(200):
            try:
                await redis.ping()
                return redis
            except RedisConnectionError:
                await asyncio.sleep(0.05)
        raise SystemExit("bench fleet: the private redis-server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Meter:
    """CPU seconds of each part since `start`, the PostgreSQL backends sampled while it
    runs (a backend that connects later counts from 0; one that leaves keeps its last
    sample)."""

    def __init__(
        self, pg: asyncpg.Connection, database: str, redis_pid: int, observers: set[int]
    ) -> None:
        """`pg` is the meter's own connection; `observers` are the backends of the
        benchmark's own queries, not counted either."""
        self._pg, self._database, self._redis_pid = pg, database, redis_pid
        self._observers = observers
        self._workers: list[int] = []
        self._backends: dict[int, tuple[float, float]] = {}  # pid: (at start, last seen)
        self._sampler: asyncio.Task[None] | None = None
        self._at_start: dict[str, float] = {}

    async def _backend_pids(self) -> list[int]:
        rows = await self._pg.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self._database,
        )
        return [int(r["pid"]) for r in rows if int(r["pid"]) not in self._observers]

    async def _sample(self, first: bool = False) -> None:
        for pid in await self._backend_pids():
            now = _own_cpu(pid)
            start, _ = self._backends.get(pid, (now if first else 0.0, now))
            self._backends[pid] = (start, now)

    async def _keep_sampling(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            await self._sample()

    async def start(self, workers: list[int]) -> None:
        self._workers, self._backends = workers, {}
        await self._sample(first=True)
        self._at_start = {"workers": _tree_cpu(workers), "redis": _own_cpu(self._redis_pid)}
        self._sampler = asyncio.create_task(self._keep_sampling())

    async def stop(self) -> dict[str, float]:
        assert self._sampler is not None
        if self._sampler.done():
            self._sampler.result()  # raises what stopped it
        self._sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sampler
        await self._sample()
        return {
            "workers": _tree_cpu(self._workers) - self._at_start["workers"],
            "postgres": sum(last - start for start, last in self._backends.values()),
            "redis": _own_cpu(self._redis_pid) - self._at_start["redis"],
        }


async def _commandstats(redis: Redis) -> dict[str, tuple[int, float]]:
    stats = await redis.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"]))
        for name, v in stats.items()
    }


def _delta(
    before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]
) -> dict[str, tuple[int, float]]:
    zero = (0, 0.0)
    return {
        name: (calls - before.get(name, zero)[0], usec - before.get(name, zero)[1])
        for name, (calls, usec) in after.items()
    }


class Fleet:
    """One benchmark run's parts: the private Redis, the database, the client broker."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.redis_server = PrivateRedis(workdir)
        self.settings = Settings(redis_url=self.redis_server.url, database_url=database_url)
        self.env = {
            **os.environ,
            "TASKLENS_REDIS_URL": self.redis_server.url,
            "TASKLENS_DATABASE_URL": database_url,
        }
        self.database = database_url.rsplit("/", 1)[1].split("?", 1)[0]

    def _client(self) -> TaskLensStreamBroker:
        """The sending side as an app or the API has it: TaskLens's broker and middleware
        (`pending` rows, events), without the reaper and retries only workers run."""
        broker = TaskLensStreamBroker(
            self.redis_server.url,
            queue_name=self.settings.queue_name,
            consumer_group_name=GROUP,
            consumer_id="0",
            maxlen=STREAM_MAXLEN,
        )
        broker.add_middlewares(
            TaskLensMiddleware(database_url=self.database_url, redis_url=self.redis_server.url)
        )
        broker.register_task(demo.noop, task_name="demo.noop")
        return broker

    async def _enqueue(self, broker: AsyncBroker, n: int) -> None:
        task = broker.find_task("demo.noop")
        assert task is not None
        for start in range(0, n, ENQUEUE_AT_ONCE):
            await asyncio.gather(*(task.kiq() for _ in range(min(ENQUEUE_AT_ONCE, n - start))))

    def _start_workers(self, k: int) -> list[subprocess.Popen[bytes]]:
        tasklens = str(Path(sys.executable).with_name("tasklens"))
        log = (self.workdir / "workers.log").open("ab")
        return [
            subprocess.Popen(
                [tasklens, "worker", "--workers", "1", "--grace", "5", "--shutdown-timeout", "5"],
                cwd=BACKEND,
                start_new_session=True,  # its own process group: stopped with its child
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            for _ in range(k)
        ]

    async def run(self, k: int, tasks: int) -> tuple[Drain, Drain]:
        """(the enqueue of `tasks`, the drain of them by `k` worker processes)."""
        redis = await self.redis_server.ready()
        pg = await connect_postgres(self.database_url)
        own_pg = await connect_postgres(self.database_url)
        observers = {int(await pg.fetchval("SELECT pg_backend_pid()"))}
        meter = Meter(own_pg, self.database, self.redis_server.process.pid, observers)
        workers: list[subprocess.Popen[bytes]] = []
        try:
            await redis.flushdb()
            await pg.execute("TRUNCATE task_execution_logs, task_log_counts")
            client = self._client()
            streams = list(client.streams)
            await redis.sadd(PAUSED_QUEUES, *streams)
            await client.startup()
            await meter.start([])
            calls, own = await _commandstats(redis), time.process_time()
            started = time.perf_counter()
            await self._enqueue(client, tasks)
            try:  # flushes the `pending` rows
                await asyncio.wait_for(client.shutdown(), 60)
            except TimeoutError:
                raise SystemExit("bench fleet: the client broker did not shut down") from None
            cpu = await meter.stop()
            cpu["workers"] = time.process_time() - own  # the client: this process
            seconds = time.perf_counter() - started
            enqueue = Drain(0, tasks, seconds, cpu, _delta(calls, await _commandstats(redis)))

            workers = self._start_workers(k)
            deadline = time.monotonic() + 60 + 5 * k
            while await redis.hlen(WORKERS) < k:
                if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    raise SystemExit(f"bench fleet: workers did not start, see {self.workdir}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # the last ones finish starting up
            stream = self.settings.queue_name
            await redis.srem(PAUSED_QUEUES, *streams)
            while (await _group(redis, stream))[0] == 0:
                await asyncio.sleep(0.005)
            calls, started = await _commandstats(redis), time.perf_counter()
            await meter.start([w.pid for w in workers])
            while (await _group(redis, stream))[1] > 0:
                await asyncio.sleep(0.02)
            query = "SELECT count(*) FROM task_execution_logs WHERE status = 'success'"
            while await pg.fetchval(query) < tasks:
                await asyncio.sleep(0.02)
            seconds = time.perf_counter() - started
            cpu = await meter.stop()
            drain = Drain(k, tasks, seconds, cpu, _delta(calls, await _commandstats(redis)))
        finally:
            _stop(workers)
            await redis.aclose()
            await pg.close()
            await own_pg.close()
        return enqueue, drain

    def stop(self) -> None:
        self.redis_server.stop()


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each worker's process group; SIGKILL to any still there after 30 s (the
    run is measured by then: what a killed worker leaves pending is flushed next run)."""
    for w in workers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(w.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for w in workers:
        try:
            w.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, signal.SIGKILL)
            w.wait(10)


async def _group(redis: Redis, stream: str) -> tuple[int, int]:
    """(entries read by the group, entries still unread or unacknowledged)."""
    for group in await redis.xinfo_groups(stream):
        if group["name"] in (GROUP, GROUP.encode()):
            return int(group["entries-read"] or 0), int(group["lag"] or 0) + int(group["pending"])
    return 0, 1


def _show(label: str, d: Drain) -> None:
    per = ", ".join(f"{p} {d.us_per_task(p):.0f}" for p in PARTS)
    busy = sum(d.cpu.values()) / d.seconds
    rows = ""
    if d.workers and d.writes:
        rows = (
            f"; {d.tasks / d.writes:.0f} rows per PostgreSQL write, "
            f"{d.writes / d.seconds / d.workers:.1f} writes/s per worker"
        )
    print(
        f"  {label}: {d.rate:8,.0f} tasks/s ({d.tasks:,} in {d.seconds:.2f}s); CPU µs/task "
        f"{per}; the parts used {busy:.2f} cores{rows}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def ratio(measured: float, predicted: float) -> str:
    """measured / predicted; none when the model leaves no CPU for tasks (the per-process
    costs alone fill the cores)."""
    return f"{measured / predicted:.3f}" if predicted > 0 else "n/a (no CPU left for tasks)"


def _per_call(drains: list[Drain]) -> dict[str, float]:
    """Figures of Redis commands over the drains: calls per task and µs per call."""
    out: dict[str, float] = {}
    tasks = sum(d.tasks for d in drains)
    for name in COMMANDS:
        calls = sum(d.calls.get(name, (0, 0.0))[0] for d in drains)
        usec = sum(d.calls.get(name, (0, 0.0))[1] for d in drains)
        out[f"{name}_per_task"] = calls / tasks
        out[f"{name}_us_per_call"] = usec / calls if calls else 0.0
    all_calls = sum(c for d in drains for c, _ in d.calls.values())
    out["redis_us_per_command"] = sum(d.cpu["redis"] for d in drains) * 1e6 / all_calls
    return out


async def run(
    database_url: str, tasks: int, fleet_workers: int, calibration_workers: int, cores: float
) -> dict[str, float]:
    cores = cores or float(os.cpu_count() or 1)
    workdir = Path(tempfile.mkdtemp(prefix="tasklens-fleet-"))
    fleet = Fleet(database_url, workdir)
    drains: dict[int, Drain] = {}
    try:
        for k in (1, calibration_workers, fleet_workers):
            enqueue, drain = await fleet.run(k, tasks)
            _show(f"enqueue, then {k:2d} worker process(es)", drain)
            drains[k] = drain
            if k == 1:
                first_enqueue = enqueue
                _show("the enqueue (client side)", enqueue)
    finally:
        fleet.stop()
    costs = fit(drains[1], drains[calibration_workers])
    per_worker = 1000 / fleet.settings.log_write_interval_ms  # a busy worker's writes/s
    crowded = drains[calibration_workers]
    shared_writes = crowded.writes / crowded.seconds / crowded.workers
    for part, c in costs.items():
        print(
            f"  unit costs, {part}: {c.per_task:.0f} µs per task + {c.per_write:.0f} µs per "
            f"write (at {per_worker:g} writes/s: {c.per_write * per_worker / 1e4:.2f} % of a "
            "core per busy worker process)",
            flush=True,
        )
    figures: dict[str, float] = {"cores": cores, "load": os.getloadavg()[0]}
    for k, drain in drains.items():
        # Workers on their own machines write on their interval; sharing these cores they
        # write as often as the most crowded calibration run's did.
        p = predict(costs, k, cores, shared_writes)
        print(
            f"  {k:2d} worker process(es), {shared_writes:.1f} writes/s each: predicted "
            f"{p.rate:,.0f} tasks/s ({p.limit}), "
            f"measured {drain.rate:,.0f}, ratio {ratio(drain.rate, p.rate)}",
            flush=True,
        )
        used = sum(drain.cpu.values()) / drain.seconds
        got = predict(costs, k, used, per_worker, drain.writes / drain.seconds).rate
        print(
            f"      at the {used:.2f} cores the parts got and the writes they made (the cost "
            f"model alone, on a busy machine): predicted {got:,.0f}, ratio "
            f"{ratio(drain.rate, got)}",
            flush=True,
        )
        figures[f"measured_{k}"], figures[f"predicted_{k}"] = drain.rate, p.rate
        figures[f"predicted_at_used_{k}"], figures[f"used_cores_{k}"] = got, used
        for part in PARTS:
            figures[f"{part}_us_per_task_{k}"] = drain.us_per_task(part)
    for part, c in costs.items():
        figures[f"{part}_us_per_task"] = c.per_task
        figures[f"{part}_us_per_write"] = c.per_write
    figures.update(_per_call(list(drains.values())))
    for part in PARTS:
        figures[f"enqueue_{part}_us_per_task"] = first_enqueue.us_per_task(part)
    figures["enqueue_redis_us_per_command"] = (
        first_enqueue.cpu["redis"] * 1e6 / sum(c for c, _ in first_enqueue.calls.values())
    )
    return figures
