"""`python -m benchmarks [throughput|queries|all]` — prints figures and ratios, measured in
the same run against a baseline (raw taskiq for throughput; targets for query times)."""

from __future__ import annotations

import argparse
import asyncio
import os

import asyncpg

from benchmarks import (
    dedup,
    enqueue,
    fanout,
    health_sockets,
    queries,
    scrape,
    throughput,
    writes,
)
from tasklens import migrate

PG_ADMIN = os.environ.get("TASKLENS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TASKLENS_BENCH_REDIS", "redis://127.0.0.1:6379/14")
BENCH_DB = os.environ.get("TASKLENS_BENCH_DB_NAME", "tasklens_bench")


async def _fresh_database() -> str:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DB)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await conn.close()
    return (
        PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        + f"/{BENCH_DB}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks")
    parser.add_argument(
        "which",
        nargs="?",
        default="all",
        choices=[
            "all",
            "throughput",
            "queries",
            "enqueue",
            "writes",
            "dedup",
            "fanout",
            "health_sockets",
            "scrape",
        ],
    )
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks per throughput run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=20, help="runs of each query shape")
    parser.add_argument("--rate", type=float, default=200, help="enqueue requests per second")
    parser.add_argument("--seconds", type=float, default=10, help="enqueue run length")
    parser.add_argument("--api-workers", type=int, default=1, help="API processes (enqueue)")
    parser.add_argument("--requests", type=int, default=1_000, help="identical requests (dedup)")
    parser.add_argument("--write-tasks", type=int, default=50_000, help="tasks (3 events each)")
    parser.add_argument("--batch-events", type=int, default=500, help="events per write")
    parser.add_argument("--writers", type=int, default=1, help="writing connections")
    parser.add_argument("--naive-tasks", type=int, default=3_000, help="tasks, naive baseline")
    parser.add_argument("--clients", type=int, default=500, help="WebSocket clients (fanout)")
    parser.add_argument("--events-rate", type=float, default=10, help="events per second (fanout)")
    parser.add_argument("--sockets", type=int, default=1_000, help="half never read (health)")
    parser.add_argument("--running-tasks", type=int, default=3_000, help="tasks (health)")
    parser.add_argument(
        "--progress-seconds", type=float, default=5, help="progress interval per task (health)"
    )
    parser.add_argument("--health-rate", type=float, default=20, help="GET /health per second")
    parser.add_argument(
        "--skip-generate", action="store_true", help="reuse the rows of the previous run"
    )
    args = parser.parse_args()

    database_url = asyncio.run(_fresh_database())
    migrate.upgrade(database_url)
    if args.which in ("all", "throughput"):
        print(
            f"throughput: {args.tasks:,} no-op tasks, {args.workers} worker process(es), "
            f"{args.rounds} rounds",
            flush=True,
        )
        t = asyncio.run(
            throughput.run(REDIS_URL, database_url, args.tasks, args.rounds, args.workers)
        )
        print(
            f"throughput: raw {t['raw_tasks_per_s']:.0f}/s, with middleware "
            f"{t['middleware_tasks_per_s']:.0f}/s, ratio {t['ratio']:.3f} (target >= 0.90); "
            f"paired per round {t['paired_ratio']:.3f}"
        )
        print(
            f"throughput: worker CPU per task raw {t['raw_cpu_us_per_task']:.0f} µs, with "
            f"middleware {t['middleware_cpu_us_per_task']:.0f} µs, ratio {t['cpu_ratio']:.3f}"
        )
    if args.which in ("all", "enqueue"):
        print(
            f"enqueue: POST /api/v1/analyses at {args.rate:g}/s for {args.seconds:g}s "
            "against GET /health at the same rate",
            flush=True,
        )
        e = asyncio.run(
            enqueue.run(REDIS_URL, database_url, args.rate, args.seconds, args.api_workers)
        )
        print(
            f"enqueue: p50 {e['enqueue_p50_ms']:.1f} ms, p99 {e['enqueue_p99_ms']:.1f} ms "
            f"(target p99 < 20; /health p99 {e['health_p99_ms']:.1f} ms, ratio "
            f"{e['enqueue_p99_ms'] / e['health_p99_ms']:.2f})"
        )
    if args.which in ("all", "dedup"):
        print(
            f"dedup: {args.requests:,} identical POST /api/v1/analyses at once, "
            f"{max(args.api_workers, 2)} API processes",
            flush=True,
        )
        d = asyncio.run(dedup.run(REDIS_URL, database_url, args.requests, max(args.api_workers, 2)))
        exact = (
            d["answered_202"] == d["requests"]
            and d["distinct_task_ids"] == d["not_deduplicated"] == 1
            and d["messages_queued"] == d["log_rows"] == 1
        )
        print(
            f"dedup: {'EXACT' if exact else 'NOT EXACT'}: executions queued "
            f"{d['messages_queued']:.0f} (target 1, ratio {d['messages_queued']:.2f}), "
            f"p99 {d['p99_ms']:.0f} ms for the burst"
        )
    if args.which in ("all", "fanout"):
        print(
            f"fanout: {args.events_rate:g} events/s for {args.seconds:g}s to 1, then "
            f"{args.clients} WebSocket clients of one API process",
            flush=True,
        )
        f = asyncio.run(
            fanout.run(REDIS_URL, database_url, args.clients, args.events_rate, args.seconds)
        )
        print(
            f"fanout: p99 {f['fanout_p99_ms']:.1f} ms to {args.clients} clients (target < 100, "
            f"ratio {f['fanout_p99_ms'] / 100:.2f}); one client p99 {f['baseline_p99_ms']:.1f} "
            f"ms (fan-out ratio {f['fanout_p99_ms'] / f['baseline_p99_ms']:.2f})"
        )
    if args.which in ("all", "health_sockets"):
        print(
            f"health_sockets: GET /health at {args.health_rate:g}/s for {args.seconds:g}s with "
            f"{args.sockets} WebSockets (half never reading) and {args.running_tasks:,} running "
            f"tasks (progress every {args.progress_seconds:g}s each), one API process",
            flush=True,
        )
        h = asyncio.run(
            health_sockets.run(
                REDIS_URL,
                database_url,
                args.sockets,
                args.running_tasks,
                args.progress_seconds,
                args.seconds,
                args.health_rate,
            )
        )
        print(
            f"health_sockets: /health p99 {h['loaded_p99_ms']:.1f} ms under load (target < 100, "
            f"ratio {h['loaded_p99_ms'] / 100:.2f}); {h['baseline_p99_ms']:.1f} ms before any "
            f"socket (ratio {h['loaded_p99_ms'] / h['baseline_p99_ms']:.1f}); /health/live "
            f"(no database or Redis round trip) p99 {h['live_loaded_p99_ms']:.1f} ms under load; "
            f"{h['stalled_cut_off']:.0f} of {h['stalled']:.0f} stalled sockets cut off, "
            f"{h['readers_still_open']:.0f} readers still open"
        )
    if args.which in ("all", "writes"):
        print(
            f"writes: {args.write_tasks:,} tasks x 3 lifecycle events into PostgreSQL",
            flush=True,
        )
        w = asyncio.run(
            writes.run(
                database_url, args.write_tasks, args.batch_events, args.writers, args.naive_tasks
            )
        )
        rate = w["batched_events_per_s"]
        print(
            f"writes: {rate:,.0f} events/s, ratio to the {writes.TARGET:,} target "
            f"{rate / writes.TARGET:.2f}, to the naive per-event upsert "
            f"({w['naive_events_per_s']:,.0f}/s) {rate / w['naive_events_per_s']:.1f}"
        )
    if args.which in ("all", "queries"):
        print(f"queries: {args.rows:,} rows, {args.repeat} runs each", flush=True)
        q = asyncio.run(queries.run(database_url, args.rows, args.repeat, args.skip_generate))
        history = max(v for k, v in q.items() if k.startswith("history"))
        metrics = max(v for k, v in q.items() if k.startswith("metrics"))
        print(
            f"queries: worst history p95 {history:.1f} ms (target < 50, ratio "
            f"{history / 50:.2f}); worst metrics p95 (up to 30 d) {metrics:.1f} ms "
            f"(target < 100, ratio {metrics / 100:.2f})"
        )
    if args.which in ("all", "scrape"):
        print(
            f"scrape: GET /metrics vs GET /health on a {args.rows:,}-row log, {args.repeat} "
            f"each; writes of {args.write_tasks:,} tasks with and without the totals triggers",
            flush=True,
        )
        m = asyncio.run(
            scrape.run(
                REDIS_URL,
                database_url,
                args.rows,
                args.repeat,
                args.write_tasks,
                args.rounds,
                args.skip_generate and args.which != "all",
            )
        )
        print(
            f"scrape: /metrics p50 {m['scrape_p50_ms']:.1f} ms ({m['scrape_bytes']:,.0f} bytes), "
            f"/health p50 {m['health_p50_ms']:.1f} ms, ratio "
            f"{m['scrape_p50_ms'] / m['health_p50_ms']:.1f}; batched writes "
            f"{m['writes_with_totals_per_s']:,.0f} events/s with the totals triggers, "
            f"{m['writes_without_totals_per_s']:,.0f} without, ratio "
            f"{m['writes_with_totals_per_s'] / m['writes_without_totals_per_s']:.3f}"
        )


if __name__ == "__main__":
    main()
