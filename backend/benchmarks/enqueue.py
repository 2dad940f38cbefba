"""Enqueue latency of `POST /api/v1/analyses` at a steady request rate, through a real
`tasklens serve` process (distributed mode, no worker: only the enqueue path is timed).

Each request names a different GitHub login, so each one claims its key and sends a task
(the slow path; a deduplicated request only reads). The baseline, in the same run and at the
same rate, is `GET /health`: the same server answering a request that does nothing of ours.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio as redis

from tasklens.tracking.database import connect_postgres

TOKEN = "bench-operator-token-0123456789"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process `pid` and its children (uvicorn's API processes)
    have used so far: the server's cost of a phase, whatever else the machine runs."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command, which may hold spaces
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


class RawHttp:
    """A minimal keep-alive HTTP/1.1 client over asyncio streams. httpx costs ~2 ms of CPU
    a request, enough on 2 cores to become the bottleneck it is meant to measure."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        return (await self.exchange(method, path, body))[0]

    async def exchange(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """The status and the body of one request."""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        while True:  # kept-alive connections the server closed (idle > 5 s) are skipped
            fresh = not self._idle
            reader, writer = (
                await asyncio.open_connection(self.host, self.port) if fresh else self._idle.pop()
            )
            writer.write(head)
            try:
                status_line = await reader.readline()
            except ConnectionResetError:  # closed by the server as the request arrived
                status_line = b""
            if not status_line:
                writer.close()
                if fresh:
                    raise ConnectionError(f"{method} {path}: the server closed the connection")
                continue
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
            self._idle.append((reader, writer))
            return int(status_line.split()[1]), answer

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()


async def _paced(
    client: RawHttp,
    rate: float,
    seconds: float,
    send: Callable[[RawHttp, int], Awaitable[int]],
    timeline: list[tuple[float, float]] | None = None,
    failures: list[int] | None = None,
) -> list[float]:
    """Requests at fixed times; latency counted from when each was due, so a slow server
    cannot hide its queue (no coordinated omission). `timeline` gets (seconds after the
    start the request was due, latency ms) for each. A status other than 200/202 goes into
    `failures` when given (its latency still counts), else it ends the run."""
    latencies: list[float] = []

    async def one(i: int, due: float) -> None:
        status = await send(client, i)
        latencies.append((time.perf_counter() - due) * 1000)
        if timeline is not None:
            timeline.append((due - begin, latencies[-1]))
        if failures is not None and status not in (200, 202):
            failures.append(status)
        assert failures is not None or status in (200, 202), status

    tasks = []
    begin = time.perf_counter()
    for i in range(int(rate * seconds)):
        due = begin + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return latencies


async def forget_earlier_runs(database_url: str) -> None:
    """Deletes the `pending` rows earlier runs left (no worker ran them, and their messages
    went with the flushed Redis database): else the server's reaper would close them all as
    lost during the timed phase, a recovery from a Redis data loss, not an enqueue cost."""
    conn = await connect_postgres(database_url)
    try:
        await conn.execute("DELETE FROM task_execution_logs WHERE status = 'pending'")
    finally:
        await conn.close()


def start_server(
    redis_url: str,
    database_url: str,
    api_workers: int,
    extra_env: dict[str, str] | None = None,
    log: Path | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """`tasklens serve` in the distributed mode, with no worker, on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {
        **os.environ,
        "TASKLENS_DATABASE_URL": database_url,
        "TASKLENS_REDIS_URL": redis_url,
        "TASKLENS_PORT": str(port),
        "TASKLENS_API_TOKENS": f"bench:operator:{TOKEN}",
        "TASKLENS_API_WORKERS": str(api_workers),
        **(extra_env or {}),
    }
    tasklens = str(Path(sys.executable).with_name("tasklens"))
    output = log.open("wb") if log else subprocess.DEVNULL
    server = subprocess.Popen([tasklens, "serve"], env=env, stdout=output, stderr=output)
    return server, port


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Graceful stop; killed if a loaded machine keeps it past 20 s (no server left behind)."""
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(20)


async def wait_healthy(port: int) -> None:
    for _ in range(600):  # a loaded machine starts it slowly
        client = RawHttp("127.0.0.1", port, TOKEN)
        try:
            if await client.request("GET", "/health") == 200:
                return
        except OSError:
            pass
        finally:
            await client.close()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"tasklens serve did not answer on port {port} within 60 s")


async def run(
    redis_url: str, database_url: str, rate: float, seconds: float, api_workers: int = 1
) -> dict[str, float]:
    store = redis.Redis.from_url(redis_url)
    # The benchmark's own Redis database: no queue left by an earlier run (nothing consumes
    # it), which the reaper's lost-message check would read through, unlike a served queue.
    await store.flushdb()
    await store.aclose()
    await forget_earlier_runs(database_url)
    server, port = start_server(redis_url, database_url, api_workers)
    client = RawHttp("127.0.0.1", port, TOKEN)
    health_failed: list[int] = []  # e.g. a 503 when the database check waited past 3 s
    enqueue_failed: list[int] = []
    try:
        await wait_healthy(port)
        run_id = int(time.time())

        async def analyse(c: RawHttp, i: int) -> int:
            body = json.dumps({"kind": "github_user", "subject": f"bench-{run_id}-{i}"})
            return await c.request("POST", "/api/v1/analyses", body.encode())

        async def health(c: RawHttp, i: int) -> int:
            return await c.request("GET", "/health")

        # Warm up: pooled connections opened, statements prepared, code paths imported.
        warm_up_failed: list[int] = []  # not counted: a loaded machine may start slowly
        await _paced(client, rate, 1.0, health, failures=warm_up_failed)
        await _paced(
            client, rate, 1.0, lambda c, i: analyse(c, 1_000_000 + i), failures=warm_up_failed
        )
        cpu_start = cpu_seconds(server.pid)
        baseline = await _paced(client, rate, seconds, health, failures=health_failed)
        cpu_health = cpu_seconds(server.pid)
        enqueue = await _paced(client, rate, seconds, analyse, failures=enqueue_failed)
        cpu_enqueue = cpu_seconds(server.pid)
    finally:
        await client.close()
        stop_server(server)
    result = {
        "health_p50_ms": statistics.median(baseline),
        "health_p99_ms": _percentile(baseline, 0.99),
        "enqueue_p50_ms": statistics.median(enqueue),
        "enqueue_p99_ms": _percentile(enqueue, 0.99),
        # The server's CPU per request (every API process): what caps one process's rate.
        "health_cpu_ms": (cpu_health - cpu_start) * 1000 / len(baseline),
        "enqueue_cpu_ms": (cpu_enqueue - cpu_health) * 1000 / len(enqueue),
        "health_failed": float(len(health_failed)),
        "enqueue_failed": float(len(enqueue_failed)),
    }
    for name, value in result.items():
        print(f"  {name:<16} {value:7.2f}", flush=True)
    return result
