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

from benchmarks import (
    dedup,
    enqueue,
    fanout,
    fleet,
    health_sockets,
    queries,
    scrape,
    throughput,
    writes,
)
from benchmarks.bench_database import REDIS_URL, fresh_database
from tasklens import migrate

Figures = dict[str, float]


@dataclass(frozen=True)
class Benchmark:
    """What a run says before it starts, the run itself, and the lines of its outcome."""

    intro: Callable[[argparse.Namespace], str]
    run: Callable[[argparse.Namespace, str], Coroutine[Any, Any, Figures]]
    outcome: Callable[[argparse.Namespace, Figures], list[str]]


def _throughput(a: argparse.Namespace, t: Figures) -> list[str]:
    return [
        "steal (the machine's CPU time the hypervisor gave other guests), median of the "
        "runs kept: "
        + ", ".join(
            f"{label.strip()} {t[f'{arm}_steal']:.1%}"
            for arm, label in throughput.LABELS.items()
            if f"{arm}_steal" in t
        )
        + f"; {t['runs_stolen']:.0f} of {t['runs']:.0f} runs above {t['max_steal']:.1%} "
        + (
            f"at the first try, {t['runs_kept_stolen']:.0f} still at the last of {a.tries}"
            if a.tries > 1
            else "(--tries 3 runs such a run again)"
        ),
        *_overhead(t),
        *_beside_the_log(t),
        *_vs_stock(t),
        *_cost_split(t),
        "CPU a task, medians (the servers share the worker's cores): "
        + "; ".join(
            f"{label.strip()}: worker {t[f'{arm}_cpu_us_per_task']:.0f} µs (system "
            f"{t[f'{arm}_worker_system_us_per_task']:.0f}), PostgreSQL "
            f"{t[f'{arm}_postgres_us_per_task']:.0f}, Redis {t[f'{arm}_redis_us_per_task']:.0f}"
            + (
                f", the rows' last write {t[f'{arm}_tail_ms']:.0f} ms after the stream's drain"
                if arm in throughput.LOGGED_ARMS
                else ""
            )
            for arm, label in throughput.LABELS.items()
            if f"{arm}_cpu_us_per_task" in t
        ),
        *_at_no_steal(t),
        *(_first_tries(t) if a.tries > 1 else []),
    ]


def _first_tries(t: Figures) -> list[str]:
    """Each arm against stock from the first try of every run (what the bench gives with no
    run repeated); nothing when stock ran alone."""
    against_stock = [
        f"{label.strip()} tasks/s {t[f'first_{arm}_ratio']:.3f} (paired "
        f"{t[f'first_{arm}_paired_ratio']:.3f}), CPU {t[f'first_{arm}_cpu_ratio']:.3f} "
        f"(paired {t[f'first_{arm}_paired_cpu_ratio']:.3f})"
        for arm, label in throughput.LABELS.items()
        if f"first_{arm}_ratio" in t
    ]
    if not against_stock:
        return []
    return ["first tries only (no run repeated), against stock: " + "; ".join(against_stock)]


def _paired(t: Figures, figure: str, target: float | None = None) -> str:
    """A paired median with its interval (throughput.median_interval) and, given a target,
    which side of it the interval puts the median on."""
    low, high = t[f"{figure}_low"], t[f"{figure}_high"]
    text = (
        f"{t[figure]:.3f} ({t[f'{figure}_confidence']:.0%} interval of the median "
        f"{low:.3f}-{high:.3f}"
    )
    if target is None:
        return text + ")"
    if high < target:
        side = "below the target"
    elif low >= target:
        side = "at or above the target"
    else:
        side = "this run cannot tell which side of the target"
    return f"{text}: {side})"


def _overhead(t: Figures) -> list[str]:
    """Target 1: the middleware against stock taskiq-redis."""
    if "middleware_ratio" not in t:
        return []
    return [
        f"overhead: stock taskiq-redis {t['raw_tasks_per_s']:.0f}/s, with TaskLensMiddleware "
        f"{t['middleware_tasks_per_s']:.0f}/s, ratio {t['middleware_ratio']:.3f} (target >= "
        f"0.95); paired per round {_paired(t, 'middleware_paired_ratio', 0.95)}",
        f"overhead: worker CPU per task stock {t['raw_cpu_us_per_task']:.0f} µs, with "
        f"TaskLensMiddleware {t['middleware_cpu_us_per_task']:.0f} µs, ratio "
        f"{t['middleware_cpu_ratio']:.3f} (target >= 0.95); paired per round "
        f"{_paired(t, 'middleware_paired_cpu_ratio', 0.95)}",
    ]


def _vs_stock(t: Figures) -> list[str]:
    """Target 2: `tasklens worker` against stock taskiq-redis."""
    if "tasklens_ratio" not in t:
        return []
    return [
        f"vs stock: tasklens worker (full monitoring) {t['tasklens_tasks_per_s']:.0f}/s, stock "
        f"taskiq-redis without middleware {t['raw_tasks_per_s']:.0f}/s, ratio "
        f"{t['tasklens_ratio']:.3f} (target >= 1.0); paired per round "
        f"{t['tasklens_paired_ratio']:.3f}",
        f"vs stock: worker CPU per task tasklens worker {t['tasklens_cpu_us_per_task']:.0f} µs, "
        f"stock {t['raw_cpu_us_per_task']:.0f} µs, ratio {t['tasklens_cpu_ratio']:.3f}; paired "
        f"per round {t['tasklens_paired_cpu_ratio']:.3f}",
    ]


def _cost_split(t: Figures) -> list[str]:
    """The splitting arms (`--arms raw,empty,idle,hooks,middleware`) against stock: where
    between taskiq's calling of a middleware and the whole of TaskLens the overhead goes."""
    split = [
        (arm, throughput.LABELS[arm].strip())
        for arm in throughput.SPLITTING_ARMS
        if f"{arm}_ratio" in t
    ]
    if not split:
        return []
    return [
        "the overhead split, against stock: "
        + "; ".join(
            f"{label} {t[f'{arm}_cpu_us_per_task']:.0f} µs a task, tasks/s "
            f"{t[f'{arm}_ratio']:.3f}, paired {_paired(t, f'{arm}_paired_ratio')}, CPU "
            f"{t[f'{arm}_cpu_ratio']:.3f}, paired {_paired(t, f'{arm}_paired_cpu_ratio')}"
            for arm, label in split
        )
    ]


def _beside_the_log(t: Figures) -> list[str]:
    """The middleware against stock taskiq-redis with the log's servers as busy as the
    middleware makes them (the `beside` arm), and what that load alone costs stock."""
    if "middleware_beside_cpu_ratio" not in t:
        return []
    return [
        f"beside the log's load: stock taskiq-redis {t['beside_tasks_per_s']:.0f}/s and "
        f"{t['beside_cpu_us_per_task']:.0f} µs a task while PostgreSQL and Redis do the "
        "middleware's writes (tasks/s ratio to stock without them "
        f"{t['beside_ratio']:.3f}, CPU {t['beside_cpu_ratio']:.3f}); with TaskLensMiddleware "
        f"against it: tasks/s {t['middleware_beside_ratio']:.3f} (paired "
        f"{t['middleware_beside_paired_ratio']:.3f}), CPU {t['middleware_beside_cpu_ratio']:.3f} "
        f"(paired {t['middleware_beside_paired_cpu_ratio']:.3f})"
    ]


def _at_no_steal(t: Figures) -> list[str]:
    """The worker CPU a task of each arm where a line through its runs meets no steal
    (throughput.cpu_at_no_steal), when the runs spread enough in steal to draw one."""
    arms = [
        (arm, label.strip())
        for arm, label in throughput.LABELS.items()
        if f"{arm}_cpu_us_at_no_steal" in t
    ]
    if not arms:
        return [
            f"at no steal: no line drawn (fewer than {throughput.MIN_RUNS_FOR_LINE} runs an arm, "
            f"or runs spread less than {throughput.MIN_STEAL_SPREAD:.0%} in steal)"
        ]
    return [
        "at no steal (a line through each arm's runs, worker CPU a task against steal): "
        + "; ".join(
            f"{label} {t[f'{arm}_cpu_us_at_no_steal']:.0f} µs"
            + (
                f" (ratio {t[f'{arm}_cpu_ratio_at_no_steal']:.3f})"
                if f"{arm}_cpu_ratio_at_no_steal" in t
                else ""
            )
            for arm, label in arms
        )
    ]


def _dedup(a: argparse.Namespace, d: Figures) -> list[str]:
    exact = (
        d["answered_202"] == d["requests"]
        and d["distinct_task_ids"] == d["not_deduplicated"] == 1
        and d["messages_queued"] == d["log_rows"] == 1
    )
    return [
        f"{'EXACT' if exact else 'NOT EXACT'}: executions queued {d['messages_queued']:.0f} "
        f"(target 1, ratio {d['messages_queued']:.2f}), p99 {d['p99_ms']:.0f} ms for the burst "
        f"(target < 250 ms for 100 on one API process, ratio {d['p99_ms'] / 250:.2f}); server "
        f"CPU {d['server_cpu_ms_per_request']:.2f} ms a request"
    ]


def _writes(a: argparse.Namespace, w: Figures) -> list[str]:
    rate, one, naive = (
        w["batched_events_per_s"],
        w["one_batched_events_per_s"],
        w["naive_events_per_s"],
    )
    lines = [
        f"{rate:,.0f} events/s with {a.writers} writer(s), ratio to the {writes.TARGET:,} "
        f"target {rate / writes.TARGET:.2f}, to the naive per-event upsert ({naive:,.0f}/s) "
        f"{rate / naive:.1f}"
    ]
    if a.writers > 1:
        lines.append(
            f"one writer (one worker process's recorder): {one:,.0f} events/s, ratio to the "
            f"target {one / writes.TARGET:.2f}, to naive {one / naive:.1f}; {a.writers} "
            f"writers / one {rate / one:.2f}"
        )
    lines.append(
        f"PostgreSQL CPU per event: batched {w['batched_server_cpu_us']:.1f} µs, naive "
        f"{w['naive_server_cpu_us']:.1f} µs, ratio "
        f"{w['naive_server_cpu_us'] / w['batched_server_cpu_us']:.1f}"
    )
    return lines


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


def _fleet(a: argparse.Namespace, f: Figures) -> list[str]:
    k = a.fleet_workers
    return [
        f"{k} worker processes: measured {f['measured']:,.0f} tasks/s, the model predicted "
        f"{f['predicted']:,.0f} from the runs with 1 and {a.calibration_workers} (on "
        f"{f['available_cores']:.2f} cores; the run had {f['fleet_available_cores']:.2f}): "
        f"ratio {fleet.ratio(f['measured'], f['predicted'])} (target 0.75-1.25); load "
        f"{f['load']:.1f}; at the {f['used_cores']:.2f} cores its parts got and its writes, "
        f"predicted {f['predicted_at_used']:,.0f}, ratio "
        f"{fleet.ratio(f['measured'], f['predicted_at_used'])}",
        f"CPU µs per task at {k} workers, predicted | measured: "
        + ", ".join(
            f"{p} {f[f'{p}_predicted_us_per_task']:.0f} | {f[f'{p}_us_per_task_{k}']:.0f}"
            for p in fleet.PARTS
        ),
        "unit costs (µs CPU per task | its growth per worker | per worker-second | per "
        "second): "
        + ", ".join(
            f"{p} {f[f'{p}_us_per_task']:.0f} | {f[f'{p}_us_per_task_per_worker']:.1f} | "
            f"{f[f'{p}_us_per_worker_second']:,.0f} | "
            f"{f[f'{p}_us_per_second']:,.0f}"
            for p in fleet.PARTS
        ),
        "Redis per task: "
        + ", ".join(
            f"{c.upper()} {f[f'{c}_per_task']:.3f} calls x {f[f'{c}_us_per_call']:.1f} µs"
            for c in fleet.COMMANDS
        )
        + f"; all of redis-server's CPU per command {f['redis_us_per_command']:.1f} µs",
        "enqueue (client process | PostgreSQL | Redis | system) µs per task: "
        f"{f['enqueue_load_us_per_task']:.0f} | {f['enqueue_postgres_us_per_task']:.0f} | "
        f"{f['enqueue_redis_us_per_task']:.0f} | {f['enqueue_system_us_per_task']:.0f}",
    ]


# In the order `all` runs them.
BENCHMARKS: dict[str, Benchmark] = {
    "throughput": Benchmark(
        lambda a: (
            f"{a.tasks:,} no-op tasks, {a.workers} worker process(es), {a.rounds} rounds of "
            + " / ".join(throughput.LABELS[arm].strip() for arm in a.arms)
            + " after a warm-up round"
        ),
        lambda a, db: throughput.run(
            REDIS_URL,
            db,
            a.tasks,
            a.rounds,
            a.workers,
            arms=a.arms,
            max_steal=a.max_steal,
            tries=a.tries,
        ),
        _throughput,
    ),
    "enqueue": Benchmark(
        lambda a: (
            f"POST /api/v1/analyses at {a.rate:g}/s for {a.seconds:g}s against GET "
            "/health at the same rate"
        ),
        lambda a, db: enqueue.run(REDIS_URL, db, a.rate, a.seconds, a.api_workers or 1),
        lambda a, e: [
            f"p50 {e['enqueue_p50_ms']:.1f} ms, p99 {e['enqueue_p99_ms']:.1f} ms (target p99 "
            f"< 20; /health p99 {e['health_p99_ms']:.1f} ms, ratio "
            f"{e['enqueue_p99_ms'] / e['health_p99_ms']:.2f})",
            f"server CPU per request {e['enqueue_cpu_ms']:.2f} ms (/health "
            f"{e['health_cpu_ms']:.2f} ms, ratio {e['enqueue_cpu_ms'] / e['health_cpu_ms']:.2f})",
            f"answered other than 200/202: {e['enqueue_failed']:.0f} analyses, "
            f"{e['health_failed']:.0f} /health",
        ],
    ),
    "dedup": Benchmark(
        lambda a: (
            f"{a.requests:,} identical POST /api/v1/analyses at once, "
            f"{a.api_workers or 2} API process(es)"
        ),
        lambda a, db: dedup.run(REDIS_URL, db, a.requests, a.api_workers or 2),
        _dedup,
    ),
    "fanout": Benchmark(
        lambda a: (
            f"{a.events_rate:g} events/s for {a.seconds:g}s to 1, then to {a.clients} "
            f"WebSocket clients of one API process (read by "
            f"{a.load_processes or os.cpu_count()} {a.load_generator} load processes), "
            f"GET /health at "
            f"{a.health_rate:g}/s meanwhile and before any socket"
        ),
        lambda a, db: fanout.run(
            REDIS_URL,
            db,
            a.clients,
            a.events_rate,
            a.seconds,
            a.health_rate,
            a.load_processes,
            a.exact_every,
            a.load_generator,
        ),
        lambda a, f: [
            *_fanout_latency(a, f),
            f"{f['fanout_frames_received']:,.0f} of {f['fanout_frames_expected']:,.0f} "
            f"events received, {f['fanout_clients_cut_off']:.0f} clients cut off, "
            f"{f['fanout_events_dropped_notices']:.0f} events reported dropped",
            f"/health p99 {f['fanout_health_p99_ms']:.1f} ms during the fan-out (target < 100, "
            f"ratio {f['fanout_health_p99_ms'] / 100:.2f}); {f['health_baseline_p99_ms']:.1f} "
            f"ms before any socket (ratio "
            f"{f['fanout_health_p99_ms'] / f['health_baseline_p99_ms']:.1f}); server CPU "
            f"{f['fanout_server_cpu_share']:.2f} of a core "
            f"(one client {f['baseline_server_cpu_share']:.2f}: the fan-out costs "
            f"{f['fanout_marginal_cpu_us_per_delivery']:.2f} µs per event delivered to a "
            "client), "
            f"load generator {f['fanout_load_cpu_share']:.2f}",
            f"per client and round: server {f['fanout_server_cpu_us_per_client_read']:.1f} µs "
            f"of CPU, load generator {f['fanout_load_cpu_us_per_client_read']:.1f}; waited "
            f"for a CPU (the machine's queue, ~0 when quiet): server "
            f"{f['fanout_server_cpu_queue_share']:.2f} of the window, load generator "
            f"{f['fanout_load_cpu_queue_share']:.2f}",
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
        lambda a: (
            f"{a.write_tasks:,} tasks x 3 lifecycle events into PostgreSQL, {a.writers} "
            "writer(s) and one"
        ),
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
    "fleet": Benchmark(
        lambda a: (
            f"{a.tasks:,} no-op tasks drained by 1, {a.calibration_workers} and "
            f"{a.fleet_workers} `tasklens worker` processes (a private redis-server)"
        ),
        lambda a, db: fleet.run(db, a.tasks, a.fleet_workers, a.calibration_workers, a.cores),
        _fleet,
    ),
}


def _fanout_latency(a: argparse.Namespace, f: dict[str, float]) -> list[str]:
    """The target's figure: every event timed at every client when each client timed each
    of the events it counted (the native load generator), else each read's oldest, an upper
    bound."""
    every_one_timed = f["fanout_exact_frames"] == f["fanout_frames_received"]
    if f["fanout_exact_clients"] == f["fanout_clients"] and every_one_timed:
        p99, one, how = f["fanout_exact_p99_ms"], f["baseline_exact_p99_ms"], "every event"
    else:
        p99, one, how = f["fanout_p99_ms"], f["baseline_p99_ms"], "each at its read's oldest"
    return [
        f"event to client p99 {p99:.1f} ms over all {a.clients} clients ({how}; target "
        f"< 100, ratio {p99 / 100:.2f}); one client p99 {one:.1f} ms (fan-out ratio "
        f"{p99 / one:.2f})",
        f"each read timed at its oldest event: p99 {f['fanout_p99_ms']:.1f} ms; each event "
        f"timed on its own, {f['fanout_exact_clients']:.0f} clients: p50 "
        f"{f['fanout_exact_p50_ms']:.1f} ms, p99 {f['fanout_exact_p99_ms']:.1f} ms, max "
        f"{f['fanout_exact_max_ms']:.1f} ms",
    ]


# The options of every benchmark: (flag, type, default, help).
OPTIONS: tuple[tuple[str, type[int] | type[float], float, str | None], ...] = (
    ("--tasks", int, 20_000, "tasks per throughput run"),
    ("--rounds", int, 3, None),
    ("--workers", int, 1, "worker processes"),
    (
        "--max-steal",
        float,
        throughput.MAX_STEAL,
        "a throughput run whose machine lost more than this share of its CPU time to other "
        "guests is run again",
    ),
    ("--tries", int, throughput.TRIES, "tries of a throughput run at most (see --max-steal)"),
    ("--rows", int, 2_000_000, None),
    ("--repeat", int, 20, "runs of each query shape"),
    ("--rate", float, 200, "enqueue requests per second"),
    ("--seconds", float, 10, "enqueue run length"),
    ("--requests", int, 1_000, "identical requests (dedup)"),
    ("--write-tasks", int, 50_000, "tasks (3 events each)"),
    ("--batch-events", int, 500, "events per write"),
    ("--writers", int, 2, "writing connections (writes): one per worker process"),
    ("--naive-tasks", int, 3_000, "tasks, naive baseline"),
    ("--clients", int, 2_000, "WebSocket clients (fanout)"),
    ("--events-rate", float, 200, "events per second (fanout)"),
    ("--load-processes", int, 0, "processes reading the clients (fanout; 0: one per core)"),
    (
        "--exact-every",
        int,
        0,
        "one client in this many times each event on its own (fanout; 0: every client with "
        "the native load generator, one in 10 with Python's)",
    ),
    ("--sockets", int, 1_000, "half never read (health)"),
    ("--running-tasks", int, 3_000, "tasks (health)"),
    ("--progress-seconds", float, 5, "progress interval per task (health)"),
    ("--health-rate", float, 20, "GET /health per second"),
    ("--fleet-workers", int, 20, "worker processes of the simulated fleet"),
    ("--calibration-workers", int, 8, "worker processes of the second calibration run (fleet)"),
    ("--cores", float, 0, "cores the fleet's parts share (0: measured in calibration)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks")
    parser.add_argument("which", nargs="?", default="all", choices=["all", *BENCHMARKS])
    for flag, kind, default, text in OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    parser.add_argument(
        "--api-workers",
        type=int,
        default=None,
        help="API processes of the served app (enqueue: 1, dedup: 2 unless given)",
    )
    parser.add_argument(
        "--load-generator",
        choices=["native", "python"],
        default="native",
        help="fanout's clients: compiled (fanout_clients.c, the default) or Python's",
    )
    parser.add_argument(
        "--skip-generate", action="store_true", help="reuse the rows of the previous run"
    )
    parser.add_argument(
        "--arms",
        default=",".join(throughput.ARMS),
        help="throughput's arms, comma-separated, raw among them (known: "
        + ", ".join(throughput.KNOWN_ARMS)
        + "; e.g. raw,empty,idle,hooks,middleware splits the overhead)",
    )
    args = parser.parse_args()
    args.arms = throughput.compared_arms(parser, args.arms)

    database_url = asyncio.run(fresh_database())
    migrate.upgrade(database_url)
    for name, bench in BENCHMARKS.items():
        if args.which in ("all", name):
            print(f"{name}: {bench.intro(args)}", flush=True)
            figures = asyncio.run(bench.run(args, database_url))
            for line in bench.outcome(args, figures):
                print(f"{name}: {line}")


if __name__ == "__main__":
    main()
