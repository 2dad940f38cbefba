"""Enqueue latency of `POST /api/v1/analyses` at a steady request rate, through a real
`tasklens serve` process (distributed mode, no worker: only the enqueue path is timed).

Each request names a different GitHub login, so each one claims its key and sends a task
(the slow path; a deduplicated request only reads). The baseline, in the same run and at the
same rate, is `GET /health`: the same server answering a request that does nothing of ours.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

TOKEN = "bench-operator-token-0123456789"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _paced(
    client: httpx.AsyncClient, rate: float, seconds: float, send: object
) -> list[float]:
    latencies: list[float] = []

    async def one(i: int) -> None:
        started = time.perf_counter()
        response = await send(client, i)  # type: ignore[operator]
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 202), response.text

    tasks = []
    begin = time.perf_counter()
    for i in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return latencies


async def run(redis_url: str, database_url: str, rate: float, seconds: float) -> dict[str, float]:
    port = 8765
    env = {
        **os.environ,
        "TASKLENS_DATABASE_URL": database_url,
        "TASKLENS_REDIS_URL": redis_url,
        "TASKLENS_PORT": str(port),
        "TASKLENS_API_TOKENS": f"bench:operator:{TOKEN}",
    }
    tasklens = str(Path(sys.executable).with_name("tasklens"))
    server = subprocess.Popen(
        [tasklens, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=base, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            for _ in range(100):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            run_id = int(time.time())

            async def analyse(c: httpx.AsyncClient, i: int) -> httpx.Response:
                return await c.post(
                    "/api/v1/analyses",
                    json={"kind": "github_user", "subject": f"bench-{run_id}-{i}"},
                )

            async def health(c: httpx.AsyncClient, i: int) -> httpx.Response:
                return await c.get("/health")

            # Warm up: pooled connections opened, statements prepared, code paths imported.
            await _paced(client, rate, 1.0, health)
            await _paced(client, rate, 1.0, lambda c, i: analyse(c, 1_000_000 + i))
            baseline = await _paced(client, rate, seconds, health)
            enqueue = await _paced(client, rate, seconds, analyse)
    finally:
        server.terminate()
        server.wait(20)
    result = {
        "health_p50_ms": statistics.median(baseline),
        "health_p99_ms": _percentile(baseline, 0.99),
        "enqueue_p50_ms": statistics.median(enqueue),
        "enqueue_p99_ms": _percentile(enqueue, 0.99),
    }
    for name, value in result.items():
        print(f"  {name:<16} {value:7.2f}", flush=True)
    return result
