"""`python -m benchmarks [NAME|all]` (the names: BENCHMARKS) — prints figures and ratios,
measured in the same run against a baseline (stock taskiq-redis for throughput; targets for query
times)."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

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


Figures = dict[str, float]


@dataclass(frozen=True)
class Benchmark:
    """What a run says before it starts, the run itself, and the lines of its outcome."""

    intro: Callable[[argparse.Namespace], str]
    run: Callable[[argparse.Namespace, str], Coroutine[Any, Any, Figures]]
    outcome: Callable[[argparse.Namespace, Figures], list[str]]


def _throughput(a: argparse.Namespace, t: Figures) -> list[str]:
    return [
        f"overhead: stock taskiq-redis {t['raw_tasks_per_s']:.0f}/s, with TaskLensMiddleware "
        f"{t['middleware_tasks_per_s']:.0f}/s, ratio {t['middleware_ratio']:.3f} (target >= "
        f"0.95); paired per round {t['middleware_paired_ratio']:.3f}",
        f"overhead: worker CPU per task stock {t['raw_cpu_us_per_task']:.0f} µs, with "
        f"TaskLensMiddleware {t['middleware_cpu_us_per_task']:.0f} µs, ratio "
        f"{t['middleware_cpu_ratio']:.3f} (target >= 0.95)",
        f"vs stock: tasklens worker (full monitoring) {t['tasklens_tasks_per_s']:.0f}/s, stock "
        f"taskiq-redis without middleware {t['raw_tasks_per_s']:.0f}/s, ratio "
        f"{t['tasklens_ratio']:.3f} (target >= 1.0); paired per round "
        f"{t['tasklens_paired_ratio']:.3f}",
        f"vs stock: worker CPU per task tasklens worker {t['tasklens_cpu_us_per_task']:.0f} µs, "
        f"stock {t['raw_cpu_us_per_task']:.0f} µs, ratio {t['tasklens_cpu_ratio']:.3f}",
    ]


def _dedup(a: argparse.Namespace, d: Figures) -> list[str]:
    exact = (
        d["answered_202"] == d["requests"]
        and d["distinct_task_ids"] == d["not_deduplicated"] == 1
        and d["messages_queued"] == d["log_rows"] == 1
    )
    return [
        f"{'EXACT' if exact else 'NOT EXACT'}: executions queued {d['messages_queued']:.0f} "
        f"(target 1, ratio {d['messages_queued']:.2f}), p99 {d['p99_ms']:.0f} ms for the burst"
    ]


def _writes(a: argparse.Namespace, w: Figures) -> list[str]:
    rate = w["batched_events_per_s"]
    return [
        f"{rate:,.0f} events/s, ratio to the {writes.TARGET:,} target {rate / writes.TARGET:.2f}, "
        f"to the naive per-event upsert ({w['naive_events_per_s']:,.0f}/s) "
        f"{rate / w['naive_events_per_s']:.1f}"
    ]


def _queries(a: argparse.Namespace, q: Figures) -> list[str]:
    history = max(v for k, v in q.items() if k.startswith("history"))
    metrics = max(v for k, v in q.items() if k.startswith("metrics"))
    search = max(v for k, v in q.items() if k.startswith("search"))
    return [
        f"worst history p95 {history:.1f} ms (target < 50, ratio {history / 50:.2f}); worst "
        f"metrics p95 (up to 30 d) {metrics:.1f} ms (target < 100, ratio {metrics / 100:.2f}); "
        f"worst search, filter or sort p95 {search:.1f} ms (target < 100, ratio "
        f"{search / 100:.2f})"
    ]


# In the order `all` runs them.
BENCHMARKS: dict[str, Benchmark] = {
    "throughput": Benchmark(
        lambda a: (
            f"{a.tasks:,} no-op tasks, {a.workers} worker process(es), {a.rounds} rounds of "
            "stock taskiq-redis / + TaskLensMiddleware / tasklens worker"
        ),
        lambda a, db: throughput.run(REDIS_URL, db, a.tasks, a.rounds, a.workers),
        _throughput,
    ),
    "enqueue": Benchmark(
        lambda a: (
            f"POST /api/v1/analyses at {a.rate:g}/s for {a.seconds:g}s against GET "
            "/health at the same rate"
        ),
        lambda a, db: enqueue.run(REDIS_URL, db, a.rate, a.seconds, a.api_workers),
        lambda a, e: [
            f"p50 {e['enqueue_p50_ms']:.1f} ms, p99 {e['enqueue_p99_ms']:.1f} ms (target p99 "
            f"< 20; /health p99 {e['health_p99_ms']:.1f} ms, ratio "
            f"{e['enqueue_p99_ms'] / e['health_p99_ms']:.2f})"
        ],
    ),
    "dedup": Benchmark(
        lambda a: (
            f"{a.requests:,} identical POST /api/v1/analyses at once, "
            f"{max(a.api_workers, 2)} API processes"
        ),
        lambda a, db: dedup.run(REDIS_URL, db, a.requests, max(a.api_workers, 2)),
        _dedup,
    ),
    "fanout": Benchmark(
        lambda a: (
            f"{a.events_rate:g} events/s for {a.seconds:g}s to 1, then {a.clients} "
            "WebSocket clients of one API process"
        ),
        lambda a, db: fanout.run(REDIS_URL, db, a.clients, a.events_rate, a.seconds),
        lambda a, f: [
            f"p99 {f['fanout_p99_ms']:.1f} ms to {a.clients} clients (target < 100, ratio "
            f"{f['fanout_p99_ms'] / 100:.2f}); one client p99 {f['baseline_p99_ms']:.1f} ms "
            f"(fan-out ratio {f['fanout_p99_ms'] / f['baseline_p99_ms']:.2f})"
        ],
    ),
    "health_sockets": Benchmark(
        lambda a: (
            f"GET /health at {a.health_rate:g}/s for {a.seconds:g}s with {a.sockets} "
            f"WebSockets (half never reading) and {a.running_tasks:,} running tasks (progress "
            f"every {a.progress_seconds:g}s each), one API process"
        ),
        lambda a, db: health_sockets.run(
            REDIS_URL,
            db,
            a.sockets,
            a.running_tasks,
            a.progress_seconds,
            a.seconds,
            a.health_rate,
        ),
        lambda a, h: [
            f"/health p99 {h['loaded_p99_ms']:.1f} ms under load (target < 100, ratio "
            f"{h['loaded_p99_ms'] / 100:.2f}); {h['baseline_p99_ms']:.1f} ms before any socket "
            f"(ratio {h['loaded_p99_ms'] / h['baseline_p99_ms']:.1f}); /health/live (no "
            f"database or Redis round trip) p99 {h['live_loaded_p99_ms']:.1f} ms under load; "
            f"{h['stalled_cut_off']:.0f} of {h['stalled']:.0f} stalled sockets cut off, "
            f"{h['readers_still_open']:.0f} readers still open"
        ],
    ),
    "writes": Benchmark(
        lambda a: f"{a.write_tasks:,} tasks x 3 lifecycle events into PostgreSQL",
        lambda a, db: writes.run(db, a.write_tasks, a.batch_events, a.writers, a.naive_tasks),
        _writes,
    ),
    "queries": Benchmark(
        lambda a: f"{a.rows:,} rows, {a.repeat} runs each",
        lambda a, db: queries.run(db, a.rows, a.repeat, a.skip_generate),
        _queries,
    ),
    "scrape": Benchmark(
        lambda a: (
            f"GET /metrics vs GET /health on a {a.rows:,}-row log, {a.repeat} each; "
            f"writes of {a.write_tasks:,} tasks with and without the totals triggers"
        ),
        lambda a, db: scrape.run(
            REDIS_URL,
            db,
            a.rows,
            a.repeat,
            a.write_tasks,
            a.rounds,
            a.skip_generate and a.which != "all",
        ),
        lambda a, m: [
            f"/metrics p50 {m['scrape_p50_ms']:.1f} ms ({m['scrape_bytes']:,.0f} bytes), "
            f"/health p50 {m['health_p50_ms']:.1f} ms, ratio "
            f"{m['scrape_p50_ms'] / m['health_p50_ms']:.1f}; batched writes "
            f"{m['writes_with_totals_per_s']:,.0f} events/s with the totals triggers, "
            f"{m['writes_without_totals_per_s']:,.0f} without, ratio "
            f"{m['writes_with_totals_per_s'] / m['writes_without_totals_per_s']:.3f}"
        ],
    ),
}


# The options of every benchmark: (flag, type, default, help).
OPTIONS: tuple[tuple[str, type[int] | type[float], float, str | None], ...] = (
    ("--tasks", int, 20_000, "tasks per throughput run"),
    ("--rounds", int, 3, None),
    ("--workers", int, 1, "worker processes"),
    ("--rows", int, 2_000_000, None),
    ("--repeat", int, 20, "runs of each query shape"),
    ("--rate", float, 200, "enqueue requests per second"),
    ("--seconds", float, 10, "enqueue run length"),
    ("--api-workers", int, 1, "API processes (enqueue)"),
    ("--requests", int, 1_000, "identical requests (dedup)"),
    ("--write-tasks", int, 50_000, "tasks (3 events each)"),
    ("--batch-events", int, 500, "events per write"),
    ("--writers", int, 1, "writing connections"),
    ("--naive-tasks", int, 3_000, "tasks, naive baseline"),
    ("--clients", int, 500, "WebSocket clients (fanout)"),
    ("--events-rate", float, 10, "events per second (fanout)"),
    ("--sockets", int, 1_000, "half never read (health)"),
    ("--running-tasks", int, 3_000, "tasks (health)"),
    ("--progress-seconds", float, 5, "progress interval per task (health)"),
    ("--health-rate", float, 20, "GET /health per second"),
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks")
    parser.add_argument("which", nargs="?", default="all", choices=["all", *BENCHMARKS])
    for flag, kind, default, text in OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    parser.add_argument(
        "--skip-generate", action="store_true", help="reuse the rows of the previous run"
    )
    args = parser.parse_args()

    database_url = asyncio.run(_fresh_database())
    migrate.upgrade(database_url)
    for name, bench in BENCHMARKS.items():
        if args.which in ("all", name):
            print(f"{name}: {bench.intro(args)}", flush=True)
            figures = asyncio.run(bench.run(args, database_url))
            for line in bench.outcome(args, figures):
                print(f"{name}: {line}")


if __name__ == "__main__":
    main()
