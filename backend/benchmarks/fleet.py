"""A fleet of worker processes on one machine, and the capacity model that predicts it
(specs/scaling.md).

Each run: M `demo.noop` tasks are enqueued through the production broker and middleware
(client side: `pending` rows, events) into a paused queue; K real `tasklens worker`
processes start and report their heartbeat; for a few seconds they wait on the paused queue
(their periodic costs); then the queue is resumed and timed from the first delivery until
the stream is drained and every row is `success`. Over each span it reads the CPU time
(`/proc`, user + system) of each part (PARTS: the worker processes, the PostgreSQL backends
of the benchmark's database, a private `redis-server` started for the run, this process as
the load generator, PostgreSQL's background processes and the kernel's threads), the
machine's busy and idle time (`/proc/stat`), and Redis's `INFO commandstats`.

The model: each part costs (a + g·K) µs of CPU per task with K worker processes on the
machine, d µs per worker process per second and e µs per second, so the fleet's rate on A
cores is (A·10⁶ - Σ(d·K + e)) / Σ(a + g·K), capped by each worker process's one core and by
Redis's one. d and e come from the paused windows, a and g from two calibration runs (1 and
8 workers); A is this machine's cores, less the share the rest of the machine took in the
calibration run (`share`). The fleet run (20 workers) is the check.
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

from benchmarks.throughput import BACKEND
from tasklens.broker import STREAM_MAXLEN, TaskLensStreamBroker
from tasklens.settings import Settings
from tasklens.tasks import demo
from tasklens.tracking.database import connect_postgres
from tasklens.tracking.middleware import TaskLensMiddleware
from tasklens.tracking.redis_keys import PAUSED_QUEUES, WORKERS

# Sends in flight at once: each holds a pooled Redis connection, and hundreds of connects at
# once time out on a busy machine.
ENQUEUE_AT_ONCE = 50
# workers: the `tasklens worker` processes; postgres: the backends serving them; redis: the
# private redis-server; load: this process (the load generator, which polls the stream while
# a drain runs) with its own PostgreSQL backends; system: PostgreSQL's background processes
# (WAL writer, checkpointer) and the kernel's threads (softirq of the loopback traffic).
PARTS = ("workers", "postgres", "redis", "load", "system")
PER_WORKER = ("workers", "postgres", "redis")  # parts whose periodic costs each worker makes
OWN_SESSIONS = 2  # beside the workers': PostgreSQL's, and this process's with its Redis
GROUP = "tasklens"  # the production consumer group (process.build_broker)
_TICKS = os.sysconf("SC_CLK_TCK")
# Redis commands whose calls per task and µs per call the model's tables quote.
COMMANDS = ("xadd", "xreadgroup", "xack", "evalsha", "smembers", "xautoclaim")
# Before each drain the workers wait this long on the paused queue: what their periodic
# loops cost (reclaims, the pause check, the reaper and the heartbeat every 5 s, the token
# digests every 15 s) per second. Three reaper intervals: its jitter averages out.
PERIODIC_SECONDS = 15.0
SETTLE_SECONDS = 3.0  # after the last heartbeat: a worker's first connections and passes
POLL_SECONDS = 0.02  # the load generator's look at the stream while it drains


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _own_cpu(pid: int) -> float:
    """User + system seconds of one process (0 once it is gone)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _processes() -> dict[int, tuple[int, float]]:
    """Every process: (its parent, its user + system seconds), in one pass over /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = _stat_fields(int(entry.name))
                out[int(entry.name)] = (
                    int(fields[1]),
                    (int(fields[11]) + int(fields[12])) / _TICKS,
                )
    return out


def _machine() -> tuple[float, float]:
    """(busy, idle) CPU seconds of all cores since boot (/proc/stat; steal is neither)."""
    user, nice, system, idle, iowait, irq, softirq = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    )
    return (user + nice + system + irq + softirq) / _TICKS, (idle + iowait) / _TICKS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Drain:
    """One measured span: tasks finished, wall seconds, CPU seconds of each part; the
    machine's busy and idle CPU seconds over it; and each part's µs of CPU per second in the
    window before it, the workers up and the queue paused (`periodic`)."""

    workers: int
    tasks: int
    seconds: float
    cpu: dict[str, float]
    calls: dict[str, tuple[int, float]] = field(default_factory=dict)  # command: (calls, usec)
    machine: tuple[float, float] = (0.0, 0.0)  # (busy, idle) seconds, all cores
    periodic: dict[str, float] = field(default_factory=dict)  # part: µs per second

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

    @property
    def used_cores(self) -> float:
        """Cores the measured parts got over the span."""
        return sum(self.cpu.values()) / self.seconds

    @property
    def available_cores(self) -> float:
        """Cores nothing else used: what the parts got plus what stayed idle. On a quiet
        machine the machine's cores less what the kernel and other processes took; on a
        shared one, the share the run got."""
        return self.used_cores + self.machine[1] / self.seconds

    @property
    def elsewhere_cores(self) -> float:
        """Busy cores the parts do not account for: other processes, and the kernel's
        interrupt work while a core was idle."""
        return max(self.machine[0] / self.seconds - self.used_cores, 0.0)


@dataclass(frozen=True)
class Costs:
    """One part's unit costs, in µs of CPU: per task, and its growth per task with each
    worker process sharing the cores (`per_task_per_worker`: a crowded machine switches
    between more processes, and each busy worker's own ticks and polls are spread over fewer
    tasks); per worker process per second (the periodic loops: reaper, heartbeat, reclaims,
    pause check, and what they ask of PostgreSQL and Redis); per second whatever the fleet
    (the load generator's polls, work one process does for the whole fleet)."""

    per_task: float
    per_task_per_worker: float = 0.0
    per_worker: float = 0.0
    per_second: float = 0.0

    def at(self, workers: int) -> float:
        """µs per task with `workers` processes."""
        return self.per_task + self.per_task_per_worker * workers

    def fixed(self, workers: int) -> float:
        """µs per second that do not depend on the tasks."""
        return self.per_worker * workers + self.per_second

    def rate(self, tasks: float, workers: int) -> float:
        """µs of CPU per second at `tasks`/s with `workers` processes."""
        return self.at(workers) * tasks + self.fixed(workers)


def _line(k1: int, y1: float, k2: int, y2: float) -> tuple[float, float]:
    """(slope, intercept) of the line through two runs' CPU per second, neither negative:
    a negative one (noise) is taken as 0 and the other from the mean of both runs."""
    slope = (y2 - y1) / (k2 - k1)
    intercept = y1 - slope * k1
    if slope < 0:
        return 0.0, (y1 + y2) / 2
    if intercept < 0:
        return (y1 + y2) / (k1 + k2), 0.0
    return slope, intercept


def fit(one: Drain, other: Drain) -> dict[str, Costs]:
    """Each part's CPU rate is (a + g·K)·X + d·K + e (X tasks/s, K worker processes). The
    windows before the drains, with the queue paused, at two values of K give d and e (e:
    what runs whatever the number of workers, such as the load generator's polls and what
    they cost Redis; the `system` part serves the whole machine and gets neither). What each
    drain spent beyond them, per task, at the two values of K gives a and g. A negative g
    (noise) is taken as 0, a as the mean of both runs."""
    costs = {}
    for part in PARTS:
        d, e = _line(one.workers, one.periodic[part], other.workers, other.periodic[part])
        if part == "system":
            d, e = 0.0, 0.0
        c1 = (one.us_per_second(part) - d * one.workers - e) / one.rate
        c2 = (other.us_per_second(part) - d * other.workers - e) / other.rate
        g = (c2 - c1) / (other.workers - one.workers)
        a = c1 - g * one.workers
        if g < 0 or a < 0:
            a, g = max((c1 + c2) / 2, 0.0), 0.0
        costs[part] = Costs(a, g, d, e)
    return costs


@dataclass(frozen=True)
class Prediction:
    rate: float  # tasks/s
    limit: str  # which bound set it

    def cpu_per_task(self, costs: dict[str, Costs], workers: int) -> dict[str, float]:
        """Each part's µs of CPU per task at this rate (its per-second costs spread over
        the tasks)."""
        return {p: c.rate(self.rate, workers) / self.rate for p, c in costs.items()}


def _rate(costs: Iterable[Costs], budget: float, workers: int) -> float:
    """Tasks/s that `budget` µs of CPU per second pays for once the per-second costs of
    `workers` processes are paid."""
    cs = list(costs)
    left = budget - sum(c.fixed(workers) for c in cs)
    return max(left / sum(c.at(workers) for c in cs), 0.0)


def predict(costs: dict[str, Costs], workers: int, cores: float) -> Prediction:
    """Tasks/s of `workers` processes sharing `cores` with every other part: the CPU left
    after the per-second costs, divided by the CPU all parts spend per task; the worker
    processes no more than one core each, nor Redis (one thread)."""
    bounds = {
        f"{cores:.2f} shared cores": _rate(costs.values(), cores * 1e6, workers),
        "one core per worker process": _rate([costs["workers"]], workers * 1e6, workers),
        "one Redis core": _rate([costs["redis"]], 1e6, workers),
    }
    limit = min(bounds, key=lambda name: bounds[name])
    return Prediction(bounds[limit], limit)


def share(calibration: Drain, workers: int, cores: float) -> float:
    """Cores `workers` processes will have of this machine's `cores`, from what the
    calibration run had (its parts' CPU and the idle time): the kernel shares a crowded
    machine equally among the sessions that want CPU (autogroup), and each worker process
    is one (it is started in its own), PostgreSQL's backends one, this process with its
    Redis one. The calibration run's share gives the rest of the machine's demand in
    sessions; on a quiet machine that is none and every run has all the cores."""
    ours = calibration.workers + OWN_SESSIONS
    got = min(calibration.available_cores / cores, 1.0)
    others = ours * (1 / got - 1) if got > 0 else 0.0
    return cores * (workers + OWN_SESSIONS) / (workers + OWN_SESSIONS + others)


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
    """CPU seconds of each part between `start` and `stop`. Both read the clock and the
    machine's counters first, then every process in one pass: the same order at both ends,
    so the span the CPU is read over is the span the clock measures. PostgreSQL's processes
    are also sampled while it runs (a process that starts later counts from 0; one that
    leaves keeps its last sample)."""

    def __init__(
        self, pg: asyncpg.Connection, database: str, redis_pid: int, observers: set[int]
    ) -> None:
        """`pg` is the meter's own connection; `observers` are the backends of the
        benchmark's own queries: both count as the load generator's."""
        self._pg, self._database, self._redis_pid = pg, database, redis_pid
        self._observers = observers
        self._workers: set[int] = set()
        self._seen: dict[str, dict[int, tuple[float, float]]] = {}  # part: {pid: (start, last)}
        self._sampler: asyncio.Task[None] | None = None
        self._clock = (0.0, 0.0, 0.0)  # wall, machine busy, machine idle

    async def _postgres(self) -> dict[str, list[int]]:
        """PostgreSQL's processes by part: the run's backends, the load generator's, and
        the server's own (its background processes)."""
        rows = await self._pg.fetch(
            "SELECT pid, datname, backend_type, pg_backend_pid() AS me FROM pg_stat_activity"
        )
        out: dict[str, list[int]] = {"postgres": [], "load": [], "system": []}
        for r in rows:
            pid = int(r["pid"])
            if pid == r["me"] or pid in self._observers:
                out["load"].append(pid)
            elif r["backend_type"] != "client backend":
                out["system"].append(pid)
            elif r["datname"] == self._database:
                out["postgres"].append(pid)
        return out

    def _parts(
        self, postgres: dict[str, list[int]], procs: dict[int, tuple[int, float]]
    ) -> dict[str, dict[int, float]]:
        """Each part's processes and their CPU seconds now."""
        members: dict[str, list[int]] = {
            "workers": [p for p, (ppid, _) in procs.items() if {p, ppid} & self._workers],
            "redis": [self._redis_pid],
            # the kernel's threads are kthreadd's children: softirq that overflows to
            # ksoftirqd, kworkers
            "system": [p for p, (ppid, _) in procs.items() if ppid == 2],
            "load": [os.getpid()],
        }
        for part, pids in postgres.items():
            members.setdefault(part, []).extend(pids)
        return {
            part: {pid: procs[pid][1] for pid in pids if pid in procs}
            for part, pids in members.items()
        }

    def _note(self, now: dict[str, dict[int, float]], first: bool) -> None:
        for part, pids in now.items():
            seen = self._seen.setdefault(part, {})
            for pid, cpu in pids.items():
                start, _ = seen.get(pid, (cpu if first else 0.0, cpu))
                seen[pid] = (start, cpu)

    async def _keep_sampling(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            postgres = await self._postgres()
            self._note(
                {part: {pid: _own_cpu(pid) for pid in pids} for part, pids in postgres.items()},
                first=False,
            )

    async def start(self, workers: list[int]) -> None:
        self._workers, self._seen = set(workers), {}
        postgres = await self._postgres()
        self._clock = (time.perf_counter(), *_machine())
        self._note(self._parts(postgres, _processes()), first=True)
        self._sampler = asyncio.create_task(self._keep_sampling())

    async def stop(self) -> tuple[dict[str, float], tuple[float, float], float]:
        """(CPU seconds of each part, the machine's (busy, idle) seconds, wall seconds)."""
        assert self._sampler is not None
        if self._sampler.done():
            self._sampler.result()  # raises what stopped it
        self._sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sampler
        postgres = await self._postgres()
        wall, (busy, idle) = time.perf_counter(), _machine()
        self._note(self._parts(postgres, _processes()), first=False)
        cpu = {
            part: sum(last - start for start, last in self._seen.get(part, {}).values())
            for part in PARTS
        }
        return cpu, (busy - self._clock[1], idle - self._clock[2]), wall - self._clock[0]


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
            calls = await _commandstats(redis)
            await self._enqueue(client, tasks)
            try:  # flushes the `pending` rows
                await asyncio.wait_for(client.shutdown(), 60)
            except TimeoutError:
                raise SystemExit("bench fleet: the client broker did not shut down") from None
            cpu, machine, seconds = await meter.stop()
            calls = _delta(calls, await _commandstats(redis))
            enqueue = Drain(0, tasks, seconds, cpu, calls, machine)

            workers = self._start_workers(k)
            deadline = time.monotonic() + 60 + 5 * k
            while await redis.hlen(WORKERS) < k:
                if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                    raise SystemExit(f"bench fleet: workers did not start, see {self.workdir}")
                await asyncio.sleep(0.1)
            await asyncio.sleep(SETTLE_SECONDS)  # the last ones finish starting up
            stream = self.settings.queue_name
            # The workers' periodic costs: waiting on the paused queue, polled as a drain is.
            await meter.start([w.pid for w in workers])
            until = time.monotonic() + PERIODIC_SECONDS
            while time.monotonic() < until:
                await _group(redis, stream)
                await asyncio.sleep(POLL_SECONDS)
            cpu, _, seconds = await meter.stop()
            periodic = {part: used / seconds * 1e6 for part, used in cpu.items()}

            await redis.srem(PAUSED_QUEUES, *streams)
            while (await _group(redis, stream))[0] == 0:
                await asyncio.sleep(0.005)
            calls = await _commandstats(redis)
            await meter.start([w.pid for w in workers])
            while (await _group(redis, stream))[1] > 0:
                await asyncio.sleep(POLL_SECONDS)
            query = "SELECT count(*) FROM task_execution_logs WHERE status = 'success'"
            while await pg.fetchval(query) < tasks:
                await asyncio.sleep(POLL_SECONDS)
            cpu, machine, seconds = await meter.stop()
            calls = _delta(calls, await _commandstats(redis))
            drain = Drain(k, tasks, seconds, cpu, calls, machine, periodic)
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
    rows = ""
    if d.workers and d.writes:
        rows = (
            f"; {d.tasks / d.writes:.0f} rows per PostgreSQL write, "
            f"{d.writes / d.seconds / d.workers:.1f} writes/s per worker"
        )
    if d.periodic:
        paused = ", ".join(f"{p} {d.periodic[p] / d.workers:,.0f}" for p in PER_WORKER)
        rows += f"; with the queue paused, µs/s per worker: {paused}"
    print(
        f"  {label}: {d.rate:8,.0f} tasks/s ({d.tasks:,} in {d.seconds:.2f}s); CPU µs/task "
        f"{per}; the parts used {d.used_cores:.2f} cores, {d.available_cores:.2f} were "
        f"theirs to use ({d.elsewhere_cores:.2f} busy elsewhere){rows}; load "
        f"{os.getloadavg()[0]:.1f}",
        flush=True,
    )


def ratio(measured: float, predicted: float) -> str:
    """measured / predicted; none when the model leaves no CPU for tasks (the periodic
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
    """Two calibration runs, the prediction for `fleet_workers` made from them, then the
    fleet run that checks it. `cores` 0: the cores the calibration run with more workers
    had to itself (its parts' CPU plus the machine's idle time)."""
    workdir = Path(tempfile.mkdtemp(prefix="tasklens-fleet-"))
    fleet = Fleet(database_url, workdir)
    try:
        enqueue, one = await fleet.run(1, tasks)
        _show("the enqueue (client side: `load` is the client)", enqueue)
        _show(f"enqueue, then {1:2d} worker process(es)", one)
        _, crowded = await fleet.run(calibration_workers, tasks)
        _show(f"enqueue, then {calibration_workers:2d} worker process(es)", crowded)
        costs = fit(one, crowded)
        for part, c in costs.items():
            print(
                f"  unit costs, {part}: ({c.per_task:.0f} + {c.per_task_per_worker:.1f} per "
                f"worker) µs per task + {c.per_worker:,.0f} per worker-second + "
                f"{c.per_second:,.0f} per second",
                flush=True,
            )
        machine = float(os.cpu_count() or 1)
        available = cores or share(crowded, fleet_workers, machine)
        p = predict(costs, fleet_workers, available)
        how = "given" if cores else f"its share of {machine:g}, from the calibration's"
        print(
            f"  prediction for {fleet_workers} worker processes, made now: {p.rate:,.0f} "
            f"tasks/s (bound: {p.limit}, {how})",
            flush=True,
        )
        _, measured = await fleet.run(fleet_workers, tasks)
        _show(f"enqueue, then {fleet_workers:2d} worker process(es)", measured)
    finally:
        fleet.stop()
    predicted_cpu = p.cpu_per_task(costs, fleet_workers)
    print(
        f"  {fleet_workers} worker processes: predicted {p.rate:,.0f} tasks/s, measured "
        f"{measured.rate:,.0f}, ratio {ratio(measured.rate, p.rate)} (target 0.75-1.25); "
        f"cores predicted {available:.2f}, had {measured.available_cores:.2f}",
        flush=True,
    )
    for part in PARTS:
        print(
            f"      {part:8s} CPU µs/task predicted {predicted_cpu[part]:6.0f}, measured "
            f"{measured.us_per_task(part):6.0f}; with the queue paused, µs/s predicted "
            f"{costs[part].fixed(fleet_workers):8,.0f}, measured {measured.periodic[part]:8,.0f}",
            flush=True,
        )
    at_used = predict(costs, fleet_workers, measured.used_cores)
    print(
        f"      at the {measured.used_cores:.2f} cores the parts got (the cost model alone): "
        f"predicted {at_used.rate:,.0f}, ratio "
        f"{ratio(measured.rate, at_used.rate)}",
        flush=True,
    )
    figures: dict[str, float] = {
        "load": os.getloadavg()[0],
        "measured": measured.rate,
        "predicted": p.rate,
        "available_cores": available,
        "fleet_available_cores": measured.available_cores,
        "predicted_at_used": at_used.rate,
        "used_cores": measured.used_cores,
    }
    for k, drain in ((1, one), (calibration_workers, crowded), (fleet_workers, measured)):
        figures[f"measured_{k}"] = drain.rate
        for part in PARTS:
            figures[f"{part}_us_per_task_{k}"] = drain.us_per_task(part)
    for part, c in costs.items():
        figures[f"{part}_predicted_us_per_task"] = predicted_cpu[part]
        figures[f"{part}_us_per_task"] = c.per_task
        figures[f"{part}_us_per_task_per_worker"] = c.per_task_per_worker
        figures[f"{part}_us_per_worker_second"] = c.per_worker
        figures[f"{part}_us_per_second"] = c.per_second
    figures.update(_per_call([one, crowded, measured]))
    for part in PARTS:
        figures[f"enqueue_{part}_us_per_task"] = enqueue.us_per_task(part)
    return figures
