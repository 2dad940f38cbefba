"""WebSocket fan-out: how long a lifecycle event takes to reach every one of N clients of one
`tasklens serve` process (distributed mode), against one client at the same event rate in the
same run (the baseline: the pipeline's own latency without fan-out).

Events go the production way: a LifecycleRecorder in this process records a change (stamped
with the time) and flushes it to Redis; the API process's hub sends it to each socket. The
clients run here too, so their own parsing is in the figures; the rate is kept modest so that
what is measured is the server's fan-out, not this process catching up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import websockets

from benchmarks.enqueue import TOKEN, _percentile, start_server, wait_healthy
from tasklens.tracking.lifecycle import LifecycleChange
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import build_recorder


async def _listen(url: str, prefix: str, latencies: list[float], ready: asyncio.Event) -> None:
    async with websockets.connect(url, max_size=None, open_timeout=60) as socket:
        async for raw in socket:
            frame = orjson.loads(raw)
            if frame.get("type") == "hello":
                ready.set()
            elif frame.get("type") == "task_event" and frame["data"]["task_id"].startswith(prefix):
                sent = datetime.fromisoformat(frame["timestamp"]).timestamp()
                latencies.append((time.time() - sent) * 1000)


async def _round(
    port: int, clients: int, rate: float, seconds: float, record: Callable[[LifecycleChange], None]
) -> list[float]:
    url = f"ws://127.0.0.1:{port}/api/v1/ws?token={TOKEN}"
    prefix = f"fanout-{clients}-{time.time_ns()}-"
    latencies: list[float] = []
    readies = [asyncio.Event() for _ in range(clients)]
    listeners = []
    for ready in readies:  # connect in small steps: a real crowd does not arrive in 1 ms
        listeners.append(asyncio.create_task(_listen(url, prefix, latencies, ready)))
        if len(listeners) % 50 == 0:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 60)
    events = int(rate * seconds)
    started = time.perf_counter()
    for i in range(events):
        record(
            LifecycleChange(
                task_id=f"{prefix}{i}",
                task_name="bench.fanout",
                status=TaskStatus.RUNNING,
                timestamp=datetime.now(UTC),
            )
        )
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
    await asyncio.sleep(2)  # the last events arrive
    for listener in listeners:
        listener.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    expected = events * clients
    if len(latencies) < expected:
        print(f"  {clients} clients: {expected - len(latencies)} of {expected} frames missing")
    return latencies


async def run(
    redis_url: str, database_url: str, clients: int, rate: float, seconds: float
) -> dict[str, float]:
    server, port = start_server(redis_url, database_url, 1)
    recorder = build_recorder(database_url, redis_url)
    try:
        await wait_healthy(port)
        await recorder.start()
        result: dict[str, float] = {}
        for n, name in ((1, "baseline"), (clients, "fanout")):
            latencies = await _round(port, n, rate, seconds, recorder.record)
            result[f"{name}_p50_ms"] = _percentile(latencies, 0.5)
            result[f"{name}_p99_ms"] = _percentile(latencies, 0.99)
            result[f"{name}_frames"] = len(latencies)
            print(
                f"  {n:>4} client(s): {len(latencies):,} frames, p50 "
                f"{result[f'{name}_p50_ms']:.1f} ms, p99 {result[f'{name}_p99_ms']:.1f} ms",
                flush=True,
            )
    finally:
        await recorder.stop()
        server.terminate()
        server.wait(20)
    return result
