"""WebSocket fan-out: how long a lifecycle event takes to reach each of N clients of one
`tasklens serve` process (distributed mode), against one client at the same event rate in the
same run (the pipeline's own latency without fan-out); and `/health` during the fan-out,
against `/health` before any socket.

Events go the production way: a LifecycleRecorder (in a process of its own) records each
change, stamped with the time, and flushes it to Redis; the API process's hub sends it to
every socket. Latency is from that stamp to when a client's read returned the event.

The clients are raw sockets spread over several load processes (`--load-processes`, default
one per core). Every client reads everything and counts its events, so a client that got
fewer (or was told of dropped events, or was cut off) shows. The load processes are
`fanout_clients.c`, built with the machine's C compiler (`--load-generator native`, the
default): on a machine where the clients share the server's cores, whatever they spend is CPU
the server waits for, and Python's clients (`--load-generator python`, also the fallback
without a compiler) spend more CPU a read and wait for a CPU longer (figures:
specs/issue17/fanout.md, round 7). A native client times every event on its own
(`exact_p99_ms`, over every client). A Python client cannot afford to: each read times its
oldest event (found in the bytes and parsed, no JSON decoded) and counts each event of the
read at that latency, an upper bound for each event (`p99_ms`, over all clients), and one
client in ten (`--exact-every`) also times every event on its own.
This process only asks `/health` at a fixed rate, latency counted from when each request was
due (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import functools
import gc
import hashlib
import json
import multiprocessing
import os
import re
import resource
import select
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

import sqlalchemy as sa

from benchmarks.enqueue import TOKEN, RawHttp, _paced, _percentile, start_server, wait_healthy
from benchmarks.health_sockets import LoadControl, LoadProcess, _cpu_seconds, _from_load, _handshake
from tasklens.tracking.database import create_engine
from tasklens.tracking.lifecycle import LifecycleChange
from tasklens.tracking.models import TaskExecutionLog, TaskStatus
from tasklens.tracking.recorder import build_recorder

PING = b"\x89\x04"  # a ping frame's head, with uvicorn's 4-byte payload
BUCKET_MS = 0.1  # the latency histogram's resolution
BUCKETS = 100_000  # up to 10 s; anything later lands in the last bucket
_DROPPED = re.compile(rb'"events_dropped", "count": (\d+)')


class _Seconds:
    """Epoch seconds of an ISO timestamp's first 19 characters, cached: the fraction is the
    only part that changes between most events."""

    def __init__(self) -> None:
        self._cache: dict[bytes, int] = {}

    def of(self, stamp: bytes) -> float:
        head = stamp[:19]
        whole = self._cache.get(head)
        if whole is None:
            parsed = datetime.fromisoformat(head.decode()).replace(tzinfo=UTC)
            whole = self._cache[head] = calendar.timegm(parsed.timetuple())
        if stamp[19:20] == b".":
            return whole + float(stamp[19:26])
        return float(whole)


class _Client(asyncio.Protocol):
    """One socket: the handshake, then every read scanned for this round's events. Each read
    counts its events and times its oldest one (every event in it arrived with it, so that is
    each one's upper bound, counted once per event); an `exact` client also times every event."""

    def __init__(
        self, shared: _Counts, round_id: int, exact: bool, ready: asyncio.Future[None]
    ) -> None:
        self.shared, self.exact, self.ready = shared, exact, ready
        # what is counted: once per event, and short (bytes.count of the whole prefix was
        # the load's largest Python cost: specs/issue17/fanout.md, round 7)
        self.needle = b'"task_name":"bench.fanout.%d"' % round_id
        self.prefix = self.needle + b',"status":"running","timestamp":"'
        self.first = re.compile(re.escape(self.prefix) + rb'([^"]+)"')
        # a prefix cut by a read is found whole in the next one (the tail leads it)
        self.keep = len(self.prefix) - 1
        self.head = b""
        self.upgraded = False
        self.tail = b""
        self.events = 0
        self.reads = 0  # reads that brought events: about one per broadcast round
        self.closed = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        if not self.ready.done():
            self.head += data
            if not self.upgraded:
                if b"\r\n\r\n" not in self.head:
                    return
                head, _, self.head = self.head.partition(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 101"):
                    self.ready.set_exception(RuntimeError(f"handshake refused: {head[:80]!r}"))
                    return
                self.upgraded = True
            if b'"hello"' not in self.head:  # connected once the hello frame is here
                return
            data, self.head = self.head, b""
            self.ready.set_result(None)
        shared = self.shared
        if b"events_dropped" in data:
            shared.dropped += sum(int(d[1]) for d in _DROPPED.finditer(data))
        # an event wholly in the tail was counted with the read before
        counted = self.tail.count(self.needle) if self.tail else 0
        data = self.tail + data
        ping = data.find(PING) if PING[:1] in data else -1  # memchr first: pings are rare
        while 0 <= ping <= len(data) - 6 and self.transport is not None:
            # the server's keepalive (uvicorn) closes a socket that does not answer; a pong
            # answered twice (its ping was still in the tail) is ignored by the server
            self.transport.write(b"\x8a\x84\0\0\0\0" + data[ping + 2 : ping + 6])
            ping = data.find(PING, ping + 6)
        count = data.count(self.needle) - counted
        if self.exact:
            end = 0
            for match in self.first.finditer(data):
                end = match.end()
                shared.exact[_bucket(now - shared.seconds.of(match[1]))] += 1
            cut = data.find(self.prefix, end)  # an event whose stamp this read cut
            self.tail = data[cut if cut >= 0 else max(end, len(data) - self.keep) :]
        else:
            self.tail = data[-self.keep :]
        if count:
            self.events += count
            self.reads += 1
            oldest = self.first.search(data)
            if oldest is not None:
                shared.bound[_bucket(now - shared.seconds.of(oldest[1]))] += count

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the handshake"))


def _bucket(seconds: float) -> int:
    return min(BUCKETS - 1, max(0, int(seconds * 1000 / BUCKET_MS)))


class _Counts:
    def __init__(self) -> None:
        self.bound = [0] * BUCKETS  # every client: each event at its read's oldest
        self.exact = [0] * BUCKETS  # the exact clients: each event on its own
        self.dropped = 0
        self.seconds = _Seconds()


async def _clients(
    port: int, clients: int, round_id: int, exact_every: int, control: Connection
) -> None:
    """A load process's body: open `clients` sockets, say so, read until told to stop, then
    send back the histogram, each client's event count and this process's CPU time."""
    loop = asyncio.get_running_loop()
    counts = _Counts()
    opened: list[_Client] = []
    waiting: list[asyncio.Future[None]] = []
    for i in range(clients):
        ready: asyncio.Future[None] = loop.create_future()
        _, client = await loop.create_connection(
            functools.partial(_Client, counts, round_id, i % exact_every == 0, ready),
            "127.0.0.1",
            port,
        )
        assert client.transport is not None
        client.transport.write(_handshake(port))
        opened.append(client)
        waiting.append(ready)
        if i % 25 == 24:  # a crowd arrives over a moment, not in one
            await asyncio.wait_for(asyncio.gather(*waiting), 60)
            waiting.clear()
    await asyncio.wait_for(asyncio.gather(*waiting), 60)
    control.send("connected")
    cpu_before = _own_cpu()
    queued_before = _queued_seconds("self")
    await asyncio.to_thread(control.recv)  # "stop": the events were sent and had time to arrive
    control.send(
        {
            "bound": counts.bound,
            "exact": counts.exact,
            "events": [c.events for c in opened],
            "reads": sum(c.reads for c in opened),
            "closed": sum(c.closed for c in opened),
            "dropped": counts.dropped,
            "cpu_s": _own_cpu() - cpu_before,
            "queued_s": _queued_seconds("self") - queued_before,
        }
    )
    for client in opened:
        if client.transport is not None:
            client.transport.close()


def _system_seconds(pid: int) -> float:
    """The process's system (kernel) CPU time so far: its socket writes' share."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def _queued_seconds(pid: int | str) -> float:
    """How long the process's main thread has waited, runnable, for a CPU (Linux
    schedstat): near zero on a quiet machine; as high as its CPU time on a busy one, where
    every latency figure is the scheduler's queue as much as the code."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


NATIVE_SOURCE = Path(__file__).with_name("fanout_clients.c")


def native_clients() -> Path | None:
    """fanout_clients.c built with this machine's C compiler (once per version of the
    source), or None without one: the load processes are then Python's."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    source = NATIVE_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    binary = Path(tempfile.gettempdir()) / f"tasklens-fanout-clients-{digest}"
    if not binary.exists():
        building = binary.with_suffix(f".{os.getpid()}")
        subprocess.run(
            [compiler, "-O2", "-Wall", "-o", str(building), str(NATIVE_SOURCE)], check=True
        )
        building.replace(binary)
    return binary


class _NativeLoad:
    """A compiled load process, spoken to as `_from_load` and `_round` speak to a
    multiprocessing one: each line it prints is a message, a line sent to it says stop."""

    def __init__(self, binary: Path, port: int, clients: int, round_id: int, exact_every: int):
        self._process = subprocess.Popen(
            [binary, str(port), str(clients), str(round_id), str(exact_every)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "FANOUT_TOKEN": TOKEN},
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._stdin, self._stdout = self._process.stdin, self._process.stdout

    def poll(self, timeout: float) -> bool:
        # one message at a time is all it ever has to say: the reader's buffer holds no more
        return bool(select.select([self._stdout], [], [], timeout)[0])

    def recv(self) -> object:
        message = json.loads(self._stdout.readline())
        if isinstance(message, dict):  # the report: sparse histograms, as Python's are dense
            for name in ("bound", "exact"):
                dense = [0] * BUCKETS
                for bucket, count in message[name]:
                    dense[bucket] = count
                message[name] = dense
        return message

    def send(self, _message: str) -> None:
        self._stdin.write(b"stop\n")
        self._stdin.flush()

    def is_alive(self) -> bool:
        return self._process.poll() is None

    @property
    def exitcode(self) -> int | None:
        return self._process.returncode

    def join(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout)

    def terminate(self) -> None:
        self._process.terminate()


def _clients_process(
    port: int, clients: int, round_id: int, exact_every: int, control: Connection
) -> None:
    try:
        import uvloop  # the load generator's own cost, kept small

        uvloop.run(_clients(port, clients, round_id, exact_every, control))
    except ImportError:
        asyncio.run(_clients(port, clients, round_id, exact_every, control))


async def _record(
    redis_url: str,
    database_url: str,
    round_id: int,
    rate: float,
    seconds: float,
    control: Connection,
) -> None:
    """The events process: on "go", records `rate` events a second for `seconds`."""
    recorder = build_recorder(database_url, redis_url)
    await recorder.start()
    try:
        control.send("started")
        await asyncio.to_thread(control.recv)
        events = int(rate * seconds)
        started = time.perf_counter()
        for i in range(events):
            recorder.record(
                LifecycleChange(
                    task_id=f"fanout-{round_id}-{i}",
                    task_name=f"bench.fanout.{round_id}",
                    status=TaskStatus.RUNNING,
                    timestamp=time.time(),
                )
            )
            await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
        await recorder.flush()
        control.send(events)
    finally:
        await recorder.stop()


def _events_process(
    redis_url: str,
    database_url: str,
    round_id: int,
    rate: float,
    seconds: float,
    control: Connection,
) -> None:
    asyncio.run(_record(redis_url, database_url, round_id, rate, seconds, control))


async def _forget_earlier_runs(database_url: str) -> None:
    """Deletes the rows of earlier runs' events. Nobody finishes them, so they stay
    `running` until the server's reaper closes them, and it broadcasts every row it closes as
    an event: ten thousand a pass, to every client, in the middle of a later run."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                sa.delete(TaskExecutionLog).where(sa.column("task_name").like("bench.fanout.%"))
            )
    finally:
        await engine.dispose()


def _percentile_of(histogram: list[int], fraction: float) -> float:
    total = sum(histogram)
    if not total:
        return float("nan")
    wanted = min(total - 1, int(fraction * total))
    seen = 0
    for bucket, count in enumerate(histogram):
        seen += count
        if seen > wanted:
            return (bucket + 1) * BUCKET_MS  # the bucket's upper edge: never flattering
    return BUCKETS * BUCKET_MS


async def _round(
    port: int,
    redis_url: str,
    database_url: str,
    clients: int,
    processes: int,
    rate: float,
    seconds: float,
    health: Callable[[float], Awaitable[list[float]]] | None,
    server_pid: int,
    exact_every: int,
    native: Path | None,
) -> dict[str, float]:
    """One round: `clients` sockets over `processes` load processes (`native`'s, else
    Python's), then the events; /health probed meanwhile when `health` is given."""
    spawn = multiprocessing.get_context("spawn")
    round_id = time.time_ns()
    loads: list[tuple[LoadControl, LoadProcess]] = []
    shares = [
        clients // processes + (1 if p < clients % processes else 0) for p in range(processes)
    ]
    for share in shares:
        if not share:
            continue
        if native is not None:
            native_load = _NativeLoad(native, port, share, round_id, exact_every)
            loads.append((native_load, native_load))
            continue
        mine, theirs = spawn.Pipe()
        python_load = spawn.Process(
            target=_clients_process,
            args=(port, share, round_id, exact_every, theirs),
            daemon=True,
        )
        python_load.start()
        loads.append((mine, python_load))
    events_control, remote = spawn.Pipe()
    events_proc: multiprocessing.process.BaseProcess = spawn.Process(
        target=_events_process,
        args=(redis_url, database_url, round_id, rate, seconds, remote),
        daemon=True,
    )
    events_proc.start()
    try:
        opening = time.monotonic()
        for control, load in loads:
            await _from_load(control, load, 600)
        opened_in = time.monotonic() - opening
        await _from_load(events_control, events_proc, 120)
        cpu_before = _cpu_seconds(server_pid)
        system_before = _system_seconds(server_pid)
        queued_before = _queued_seconds(server_pid)
        events_control.send("go")
        probed: list[float] = []
        if health is not None:
            probed = await health(seconds)
        sent = cast(int, await _from_load(events_control, events_proc, seconds + 120))
        await asyncio.sleep(2)  # the last events arrive
        server_cpu = _cpu_seconds(server_pid) - cpu_before
        server_system = _system_seconds(server_pid) - system_before
        server_queued = _queued_seconds(server_pid) - queued_before
        bound, exact = [0] * BUCKETS, [0] * BUCKETS
        per_client: list[int] = []
        closed = dropped = reads = 0
        load_cpu = load_queued = 0.0
        for control, load in loads:
            control.send("stop")
            report = cast(dict[str, object], await _from_load(control, load, 120))
            for total, part in ((bound, report["bound"]), (exact, report["exact"])):
                for bucket, count in enumerate(cast(list[int], part)):
                    if count:
                        total[bucket] += count
            per_client += cast(list[int], report["events"])
            closed += cast(int, report["closed"])
            dropped += cast(int, report["dropped"])
            reads += cast(int, report["reads"])
            load_cpu += cast(float, report["cpu_s"])
            load_queued += cast(float, report["queued_s"])
    finally:
        for _, load in [*loads, (events_control, events_proc)]:
            load.join(30)
            if load.is_alive():
                load.terminate()
    result = {
        "clients": float(clients),
        "events_sent": float(sent),
        "frames_expected": float(sent * clients),
        "frames_received": float(sum(per_client)),
        "fewest_events_one_client": float(min(per_client)),
        "clients_cut_off": float(closed),
        "events_dropped_notices": float(dropped),
        "p50_ms": _percentile_of(bound, 0.5),
        "p99_ms": _percentile_of(bound, 0.99),
        "max_ms": _percentile_of(bound, 1.0),
        "exact_clients": float(sum(-(-c // exact_every) for c in shares)),
        "exact_frames": float(sum(exact)),
        "exact_p50_ms": _percentile_of(exact, 0.5),
        "exact_p99_ms": _percentile_of(exact, 0.99),
        "exact_max_ms": _percentile_of(exact, 1.0),
        "opened_in_s": opened_in,
        "server_cpu_share": server_cpu / (seconds + 2),
        # what the busy machine inflates least: the server's CPU per event delivered to a client
        "server_cpu_us_per_delivery": server_cpu * 1e6 / max(1, sum(per_client)),
        "load_cpu_share": load_cpu / (seconds + 2),
        # per client and broadcast round (a client's read that brought events): what a round
        # costs each side, whatever the batch size; and the kernel's part of the server's
        "client_reads": float(reads),
        "server_cpu_us_per_client_read": server_cpu * 1e6 / max(1, reads),
        "server_system_share_of_cpu": server_system / max(1e-9, server_cpu),
        "load_cpu_us_per_client_read": load_cpu * 1e6 / max(1, reads),
        # the share of the window each side waited for a CPU while it had work: the machine's
        "server_cpu_queue_share": server_queued / (seconds + 2),
        "load_cpu_queue_share": load_queued / (seconds + 2),
    }
    if probed:
        result["health_p50_ms"] = statistics.median(probed)
        result["health_p99_ms"] = _percentile(probed, 0.99)
        result["health_max_ms"] = max(probed)
    return result


async def run(
    redis_url: str,
    database_url: str,
    clients: int,
    rate: float,
    seconds: float,
    health_rate: float = 20.0,
    processes: int = 0,
    exact_every: int = 0,
    load_generator: str = "native",
) -> dict[str, float]:
    processes = processes or os.cpu_count() or 2
    native = native_clients() if load_generator == "native" else None
    if load_generator == "native" and native is None:
        print("fanout: no C compiler here: the load processes are Python's", flush=True)
    exact_every = exact_every or (1 if native else 10)
    server, port = start_server(
        redis_url,
        database_url,
        1,
        {  # one token opens them all
            "TASKLENS_WS_MAX_CONNECTIONS": str(clients + 10),
            "TASKLENS_WS_MAX_CONNECTIONS_PER_TOKEN": str(clients + 10),
        },
        Path(tempfile.gettempdir()) / "tasklens-bench-fanout.log",
    )
    probe = RawHttp("127.0.0.1", port, TOKEN)
    statuses: list[int] = []

    async def ask(c: RawHttp, i: int) -> int:
        status = await c.request("GET", "/health")
        if status != 200:  # timed all the same: a 503 is an answer too, and counted
            statuses.append(status)
        return 200

    async def health(window: float) -> list[float]:
        # This process only times requests: its collector must not pause the probe.
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            return await _paced(probe, health_rate, window, ask)
        finally:
            gc.enable()

    try:
        await wait_healthy(port)  # migrated
        await _forget_earlier_runs(database_url)
        await _paced(probe, health_rate, 1.0, ask)  # warm up
        health_baseline = await health(seconds)
        # /health is probed in both rounds: what the server CPU grows by is the fan-out's
        one = await _round(
            port, redis_url, database_url, 1, 1, rate, seconds, health, server.pid, 1, native
        )
        many = await _round(
            port,
            redis_url,
            database_url,
            clients,
            processes,
            rate,
            seconds,
            health,
            server.pid,
            exact_every,
            native,
        )
    finally:
        server.terminate()
        server.wait(20)
        await probe.close()
    result = {f"baseline_{k}": v for k, v in one.items()}
    result |= {f"fanout_{k}": v for k, v in many.items()}
    result["health_baseline_p50_ms"] = statistics.median(health_baseline)
    result["health_baseline_p99_ms"] = _percentile(health_baseline, 0.99)
    result["health_not_200"] = float(len(statuses))
    extra = result["fanout_frames_received"] - result["baseline_frames_received"]
    # the CPU the extra clients cost, per event delivered to one of them: the machine's noise
    # inflates it far less than latency
    result["fanout_marginal_cpu_us_per_delivery"] = (
        (result["fanout_server_cpu_share"] - result["baseline_server_cpu_share"])
        * (seconds + 2)
        * 1e6
        / max(1.0, extra)
    )
    result["load_processes"] = float(processes)
    result["load_processes_native"] = float(native is not None)
    for name, value in result.items():
        print(f"  {name:<36} {value:12.2f}", flush=True)
    return result
