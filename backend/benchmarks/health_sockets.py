"""`/health` under WebSocket load: one `tasklens serve` process (distributed mode) with N live
sockets, half reading everything and half never reading past the handshake, while the events of
T running tasks stream through it; against `/health` on the same process before any socket
(the baseline, same run).

The load runs in a process of its own: the sockets (raw asyncio connections: a reader discards
what it gets, a stalled one stops reading) and a LifecycleRecorder that records each task's
start, then a progress change every `progress_seconds` (phases spread), and flushes them to
Redis the production way; the API process's hub sends them to every socket. This process only
asks `/health`, at a fixed rate, latency counted from when each request was due (no
coordinated omission): the figure is the API's, not the load generator's event loop or garbage
collector.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import gc
import multiprocessing
import os
import random
import socket
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Protocol, cast

from benchmarks.enqueue import TOKEN, RawHttp, _paced, _percentile, start_server, wait_healthy
from tasklens.tracking.lifecycle import LifecycleChange
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import LifecycleRecorder, build_recorder


@dataclass
class Sockets:
    readers: list[asyncio.StreamWriter] = field(default_factory=list)
    stalled: list[socket.socket] = field(default_factory=list)
    bytes_read: int = 0
    readers_closed: int = 0
    stalled_reset: set[int] = field(default_factory=set)

    def poll_resets(self) -> None:
        for i, raw in enumerate(self.stalled):
            if raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) in (
                errno.ECONNRESET,
                errno.EPIPE,
            ):
                self.stalled_reset.add(i)


def _handshake(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /api/v1/ws?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def _stalled(port: int) -> socket.socket:
    """A socket that completes its handshake and never reads again; a small window, so what
    the server sends piles up in the server's own buffers."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(60)
    raw.connect(("127.0.0.1", port))
    raw.sendall(_handshake(port))
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:80]!r}")
    return raw


async def _reader(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(_handshake(port))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {head[:80]!r}")
    return reader, writer


async def _drain(reader: asyncio.StreamReader, sockets: Sockets) -> None:
    while chunk := await reader.read(1 << 20):
        sockets.bytes_read += len(chunk)
    sockets.readers_closed += 1


async def _connect(
    port: int, clients: int, sockets: Sockets, drains: list[asyncio.Task[None]]
) -> None:
    for i in range(clients):
        if i % 2:
            sockets.stalled.append(await asyncio.to_thread(_stalled, port))
        else:
            reader, writer = await _reader(port)
            sockets.readers.append(writer)
            drains.append(asyncio.create_task(_drain(reader, sockets)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # a crowd arrives over a moment, not in one


async def _run_tasks(
    recorder: LifecycleRecorder, tasks: int, progress_seconds: float, until: float
) -> int:
    """Starts `tasks` tasks over one second, then a progress change from each every
    `progress_seconds` until `until`; then finishes them all. Returns the changes recorded."""
    prefix = f"health-{time.time_ns()}-"
    recorded = 0
    begin = time.monotonic()
    for i in range(tasks):
        recorder.record(
            LifecycleChange(
                task_id=f"{prefix}{i}",
                task_name="bench.health",
                status=TaskStatus.RUNNING,
                timestamp=time.time(),
            )
        )
        recorded += 1
        if i % 100 == 99:
            await asyncio.sleep(max(0.0, begin + (i + 1) / tasks - time.monotonic()))
    phases = [random.uniform(0, progress_seconds) for _ in range(tasks)]
    step = 0
    while time.monotonic() < until:
        tick = time.monotonic() - begin
        for i, phase in enumerate(phases):
            if phase <= tick:
                phases[i] = phase + progress_seconds
                step += 1
                recorder.record(
                    LifecycleChange(
                        task_id=f"{prefix}{i}",
                        task_name="bench.health",
                        status=TaskStatus.RUNNING,
                        timestamp=time.time(),
                        progress=min(0.99, step / (tasks * 100)),
                        progress_message=f"step {step}",
                    )
                )
                recorded += 1
        await asyncio.sleep(0.05)
    for i in range(tasks):
        recorder.record(
            LifecycleChange(
                task_id=f"{prefix}{i}",
                task_name="bench.health",
                status=TaskStatus.SUCCESS,
                timestamp=time.time(),
            )
        )
        recorded += 1
    return recorded


async def _load(
    port: int,
    redis_url: str,
    database_url: str,
    clients: int,
    tasks: int,
    progress_seconds: float,
    seconds: float,
    control: Connection,
) -> None:
    """The load process's body: connect, say so, run the tasks on "go", report, clean up."""
    recorder = build_recorder(database_url, redis_url)
    sockets = Sockets()
    drains: list[asyncio.Task[None]] = []
    try:
        await recorder.start()
        opening = time.monotonic()
        await _connect(port, clients, sockets, drains)
        control.send(time.monotonic() - opening)
        await asyncio.to_thread(control.recv)  # "go": the loaded window starts
        recorded = await _run_tasks(recorder, tasks, progress_seconds, time.monotonic() + seconds)
        sockets.poll_resets()
        await asyncio.sleep(1)
        sockets.poll_resets()
        control.send(
            {
                "changes_recorded": float(recorded),
                "reader_mb": sockets.bytes_read / 1e6,
                "readers_still_open": float(len(sockets.readers) - sockets.readers_closed),
                "stalled_cut_off": float(len(sockets.stalled_reset)),
                "stalled": float(len(sockets.stalled)),
            }
        )
    finally:
        await recorder.stop()
        for task in drains:
            task.cancel()
        await asyncio.gather(*drains, return_exceptions=True)
        for writer in sockets.readers:
            writer.close()
        for raw in sockets.stalled:
            raw.close()


class LoadControl(Protocol):
    """What a load process is told and answers through: a multiprocessing Connection, or
    fanout.py's compiled clients' pipes."""

    def poll(self, timeout: float) -> bool: ...
    def recv(self) -> object: ...
    def send(self, message: str) -> None: ...


class LoadProcess(Protocol):
    def is_alive(self) -> bool: ...
    @property
    def exitcode(self) -> int | None: ...
    def join(self, timeout: float) -> None: ...
    def terminate(self) -> None: ...


async def _from_load(control: LoadControl, load: LoadProcess, timeout: float) -> object:
    """The load process's next message; an error, not a hang, when it died or went silent."""

    def wait() -> object:
        deadline = time.monotonic() + timeout
        while not control.poll(0.5):
            if not load.is_alive():
                raise RuntimeError(f"the load process exited ({load.exitcode})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no word from the load process in {timeout:.0f} s")
        return control.recv()

    return await asyncio.to_thread(wait)


def _load_process(
    port: int,
    redis_url: str,
    database_url: str,
    clients: int,
    tasks: int,
    progress_seconds: float,
    seconds: float,
    control: Connection,
) -> None:
    asyncio.run(
        _load(port, redis_url, database_url, clients, tasks, progress_seconds, seconds, control)
    )


def _cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time so far (Linux /proc): how much of a core the
    server needed, a figure that a busy machine inflates far less than latency."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    redis_url: str,
    database_url: str,
    clients: int,
    tasks: int,
    progress_seconds: float,
    seconds: float,
    rate: float,
) -> dict[str, float]:
    server, port = start_server(
        redis_url,
        database_url,
        1,
        {"TASKLENS_WS_MAX_CONNECTIONS_PER_TOKEN": str(clients + 10)},  # one token opens all
        Path(tempfile.gettempdir()) / "tasklens-bench-health-sockets.log",
    )
    probe, live_probe = RawHttp("127.0.0.1", port, TOKEN), RawHttp("127.0.0.1", port, TOKEN)
    statuses: list[int] = []
    control, remote = multiprocessing.get_context("spawn").Pipe()
    load = multiprocessing.get_context("spawn").Process(
        target=_load_process,
        args=(port, redis_url, database_url, clients, tasks, progress_seconds, seconds, remote),
        name="health-sockets-load",
        daemon=True,
    )

    def probing(path: str) -> Callable[[RawHttp, int], Awaitable[int]]:
        async def ask(c: RawHttp, i: int) -> int:
            status = await c.request("GET", path)
            if status != 200:  # timed all the same: a 503 is an answer too, and counted
                statuses.append(status)
            return 200

        return ask

    health, liveness = probing("/health"), probing("/health/live")
    try:
        await wait_healthy(port)
        await _paced(probe, rate, 1.0, health)  # warm up
        baseline, live_baseline = await asyncio.gather(
            _paced(probe, rate, seconds / 3, health),
            _paced(live_probe, rate, seconds / 3, liveness),
        )
        load.start()
        opened_in = cast(float, await _from_load(control, load, 600))
        control.send("go")
        # This process only times requests: a full pass of its own collector (it imported
        # the whole backend) held the probe for ~0.6 s mid-window and was counted as the API's.
        gc.collect()
        gc.freeze()
        gc.disable()
        timeline: list[tuple[float, float]] = []
        cpu_before = _cpu_seconds(server.pid)
        loaded, live_loaded = await asyncio.gather(
            _paced(probe, rate, seconds, health, timeline),
            _paced(live_probe, rate, seconds, liveness),
        )
        server_cpu = _cpu_seconds(server.pid) - cpu_before
        gc.enable()
        outcome = cast(dict[str, float], await _from_load(control, load, seconds + 120))
    finally:
        load.join(60)
        if load.is_alive():
            load.terminate()
        server.terminate()
        server.wait(20)
        await probe.close()
        await live_probe.close()
    result = {
        "baseline_p50_ms": statistics.median(baseline),
        "baseline_p99_ms": _percentile(baseline, 0.99),
        "loaded_p50_ms": statistics.median(loaded),
        "loaded_p99_ms": _percentile(loaded, 0.99),
        "loaded_max_ms": max(loaded),
        # /health/live touches neither PostgreSQL nor Redis: the API process's own share
        "live_baseline_p99_ms": _percentile(live_baseline, 0.99),
        "live_loaded_p50_ms": statistics.median(live_loaded),
        "live_loaded_p99_ms": _percentile(live_loaded, 0.99),
        "health_not_200": len(statuses),
        "opened_in_s": opened_in,
        "server_cpu_share": server_cpu / seconds,
        **outcome,
    }
    for name, value in result.items():
        print(f"  {name:<20} {value:10.2f}", flush=True)
    worst: dict[int, float] = {}
    for due, ms in timeline:
        worst[int(due)] = max(ms, worst.get(int(due), 0.0))
    # each second of the loaded window: /health's slowest answer (a stall, or a steady queue?)
    print("  worst per second    " + " ".join(f"{worst[s]:.0f}" for s in sorted(worst)))
    return result
