"""Deduplication under a burst: N identical `POST /api/v1/analyses` at once, each on its own
connection, against a real `tasklens serve` with one or more API processes (distributed mode,
no worker, so the one task waits in the queue and every request races the same key).

Exact means: every request answered 202 with the same task id, exactly one of them not
`deduplicated`, exactly one message in the queue and one row in the lifecycle log.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import redis.asyncio as redis

from benchmarks.enqueue import (
    TOKEN,
    RawHttp,
    _percentile,
    cpu_seconds,
    start_server,
    stop_server,
    wait_healthy,
)
from tasklens.priorities import PRIORITY_ORDER, stream_for
from tasklens.settings import Settings
from tasklens.tracking.database import connect_postgres


async def run(
    redis_url: str, database_url: str, requests: int, api_workers: int
) -> dict[str, float]:
    store = redis.Redis.from_url(redis_url)
    await store.flushdb()  # the benchmark's own Redis database
    server, port = start_server(redis_url, database_url, api_workers)
    subject = f"dedup-bench-{time.time_ns()}"
    body = json.dumps({"kind": "github_user", "subject": subject}).encode()
    clients = [RawHttp("127.0.0.1", port, TOKEN) for _ in range(requests)]
    try:
        await wait_healthy(port)
        streams_before = await _queued(store)
        gate = asyncio.Event()

        async def one(client: RawHttp) -> tuple[int, dict[str, object], float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            client._idle.append((reader, writer))  # connected before the burst
            await gate.wait()
            started = time.perf_counter()
            status, answer = await client.exchange("POST", "/api/v1/analyses", body)
            return status, json.loads(answer), (time.perf_counter() - started) * 1000

        pending = [asyncio.create_task(one(c)) for c in clients]
        await asyncio.sleep(2)  # every connection open
        cpu_before = cpu_seconds(server.pid)
        gate.set()
        results = await asyncio.gather(*pending)
        cpu_burst = cpu_seconds(server.pid) - cpu_before
        await asyncio.sleep(2)  # the recorder's pending row reaches the log
        queued = await _queued(store) - streams_before
        conn = await connect_postgres(database_url)
        try:
            rows = await conn.fetchval(
                "SELECT count(*) FROM task_execution_logs WHERE params->>'subject' = $1", subject
            )
        finally:
            await conn.close()
    finally:
        for client in clients:
            await client.close()
        stop_server(server)
        await store.aclose()
    statuses = [status for status, _, _ in results]
    task_ids = {str(answer.get("task_id")) for _, answer, _ in results}
    originals = sum(answer.get("deduplicated") is False for _, answer, _ in results)
    latencies = [ms for _, _, ms in results]
    figures = {
        "requests": float(requests),
        "answered_202": float(statuses.count(202)),
        "distinct_task_ids": float(len(task_ids)),
        "not_deduplicated": float(originals),
        "messages_queued": float(queued),
        "log_rows": float(rows),
        "p50_ms": statistics.median(latencies),
        "p99_ms": _percentile(latencies, 0.99),
        # The server's CPU for the burst (every API process), per request.
        "server_cpu_ms_per_request": cpu_burst * 1000 / requests,
    }
    for name, value in figures.items():
        print(f"  {name:<18} {value:9.1f}", flush=True)
    return figures


async def _queued(store: redis.Redis) -> int:
    """Messages in the task queue's streams (every priority). Not the `tasklens:events` stream,
    which the API's recorder fills with the `pending` event: it is not an execution."""
    queue = Settings().queue_name
    return sum([int(await store.xlen(stream_for(queue, p))) for p in PRIORITY_ORDER])
