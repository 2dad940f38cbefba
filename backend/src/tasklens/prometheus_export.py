"""What `GET /metrics` tells Prometheus, and which process each number speaks for.

A scrape reaches ONE API process. Cluster-wide numbers come from the shared PostgreSQL and
Redis, so every API replica reports the same value (take `max`, never `sum`, across
replicas): task outcomes and durations, queue depth, in-flight, oldest waiting age, workers
online, the cluster's dropped rows and spilled batches, lost messages. Per-process numbers
carry a `process` label (API processes) or a `worker` label (from worker heartbeats), so
summing them never counts one process twice: WebSocket clients and each recorder's buffer,
dropped rows and failed writes.

Task outcomes are counters read from `task_outcome_totals` (migration 0006), which only
grows: retention deleting log rows never makes them go down. The duration histogram's
buckets are one per doubling of the duration (four rollup bins each), from the same table:
a scrape reads a few hundred rows, never the log.

A part that cannot be read is left out of the scrape and `tasklens_source_up{source}` says
0 for it, rather than a 500 (Prometheus would lose every other number) or a zero (a lie).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from redis.exceptions import RedisError, ResponseError
from sqlmodel import col

from tasklens import rollups
from tasklens.priorities import PRIORITY_ORDER, stream_for
from tasklens.queues import GROUP, queue_state
from tasklens.runtime import Runtime
from tasklens.tracking.heartbeat import known_workers
from tasklens.tracking.log_spill import spill_state
from tasklens.tracking.models import TaskOutcomeTotal
from tasklens.tracking.redis_keys import LOST_MESSAGES

logger = logging.getLogger(__name__)

NO_DURATION_BIN = -1  # migration 0006: a terminal row without a duration
# Migration 0006 keeps one bin per doubling: bin j holds [2^(j-1), 2^j) ms (0: under 1 ms,
# the last: 2^28 ms and up). So `le` = 2^j ms, 1 ms … 2^28 ms (~74 h), is exactly the
# count of bins 0 … j: the buckets are exact, not interpolated.
DOUBLINGS = rollups.TOP_BIN // rollups.BINS_PER_DOUBLING  # 28
BUCKET_EDGES_SECONDS = tuple(
    (j, rollups.EDGES[j * rollups.BINS_PER_DOUBLING] / 1000) for j in range(DOUBLINGS + 1)
)


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Per (task name, status): the count, the duration sum (ms), and per bin how many."""

    count: int = 0
    duration_ms_sum: float = 0.0
    bins: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Priority:
    name: str
    depth: int
    in_flight: int
    oldest_waiting_age_seconds: float


@dataclass(frozen=True, slots=True)
class RecorderFigures:
    buffered_rows: int
    rows_dropped: int
    write_failures: int


@dataclass(slots=True)
class Snapshot:
    process: str
    database_up: bool = False
    redis_up: bool | None = None  # None: the embedded mode has no Redis
    outcomes: dict[tuple[str, str], Outcomes] = field(default_factory=dict)
    priorities: list[Priority] = field(default_factory=list)
    workers_online: int | None = None
    worker_recorders: dict[str, RecorderFigures] = field(default_factory=dict)
    rows_dropped: int | None = None  # the cluster's (Redis) or, embedded, this process's
    spilled_batches: int | None = None
    lost_messages: int | None = None
    websocket_clients: int = 0
    recorder: RecorderFigures | None = None


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def read_outcomes(runtime: Runtime) -> dict[tuple[str, str], Outcomes]:
    row = TaskOutcomeTotal
    query = sa.select(
        col(row.task_name), col(row.status), col(row.bin), col(row.count), col(row.duration_ms_sum)
    )
    raw: dict[tuple[str, str], tuple[int, float, dict[int, int]]] = {}
    async with runtime.engine.connect() as conn:
        for name, status, index, count, duration_sum in await conn.execute(query):
            total, summed, bins = raw.setdefault((name, status), (0, 0.0, {}))
            if index != NO_DURATION_BIN:
                bins[int(index)] = int(count)
            raw[(name, status)] = (total + int(count), summed + float(duration_sum), bins)
    return {key: Outcomes(*value) for key, value in raw.items()}


async def oldest_waiting_age(redis: Any, stream: str, now: float) -> float:
    """Seconds since the oldest message no worker has taken yet was added (0: none waits).
    It is the first entry after the group's last delivered id; its id is its XADD time."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # the stream does not exist yet
        return 0.0
    group = next((g for g in groups if _text(g["name"]) == GROUP), None)
    start = f"({_text(group['last-delivered-id'])}" if group else "-"
    entries = await redis.xrange(stream, min=start, max="+", count=1)
    if not entries:
        return 0.0
    added_ms = int(_text(entries[0][0]).split("-", 1)[0])
    return max(0.0, now - added_ms / 1000)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_snapshot(runtime: Runtime) -> Snapshot:
    recorder = runtime.recorder
    snapshot = Snapshot(
        process=process_name(),
        websocket_clients=runtime.hub.client_count,
        recorder=RecorderFigures(
            recorder.backlog, recorder.stats.rows_dropped, recorder.stats.write_failures
        ),
    )
    # The database and Redis are read side by side: a scrape waits for the slower one only.
    outcomes = asyncio.create_task(read_outcomes(runtime))
    if runtime.redis is None:  # embedded: the queue is this process's memory
        depths, workers = await queue_state(runtime)
        snapshot.priorities = [Priority(d.name, d.depth, d.in_flight, 0.0) for d in depths]
        snapshot.workers_online = len(workers)
        snapshot.rows_dropped = recorder.stats.rows_dropped
    else:
        try:
            await _read_redis(runtime, runtime.redis, snapshot)
            snapshot.redis_up = True
        except (OSError, RedisError) as exc:
            logger.warning("metrics: could not read Redis: %s", exc)
            snapshot.redis_up = False
    try:
        snapshot.outcomes = await outcomes
        snapshot.database_up = True
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        logger.warning("metrics: could not read the task outcome totals: %s", exc)
    return snapshot


async def _read_redis(runtime: Runtime, redis: Any, snapshot: Snapshot) -> None:
    depths, _ = await queue_state(runtime)
    now = time.time()
    streams = [stream_for(runtime.settings.queue_name, p) for p in PRIORITY_ORDER]
    found = await asyncio.gather(*(oldest_waiting_age(redis, stream, now) for stream in streams))
    ages = {p.value: age for p, age in zip(PRIORITY_ORDER, found, strict=True)}
    priorities = [Priority(d.name, d.depth, d.in_flight, ages[d.name]) for d in depths]
    workers = await known_workers(redis)
    recorders = {}
    for worker in workers:
        figures = worker.get("recorder")  # absent from a worker of an older version
        if not worker["online"] or not isinstance(figures, dict):
            continue
        with contextlib.suppress(KeyError, TypeError, ValueError):  # one odd beat: skip it
            recorders[str(worker["id"])] = RecorderFigures(
                int(figures["buffered_rows"]),
                int(figures["rows_dropped"]),
                int(figures["write_failures"]),
            )
    dropped, spilled = await spill_state(redis)
    lost = int(await redis.get(LOST_MESSAGES) or 0)
    snapshot.priorities = priorities
    snapshot.workers_online = sum(1 for w in workers if w["online"])
    snapshot.worker_recorders = recorders
    snapshot.rows_dropped, snapshot.spilled_batches, snapshot.lost_messages = dropped, spilled, lost


def families(snapshot: Snapshot) -> Iterator[Metric]:
    """The snapshot as Prometheus metric families (the names the Grafana dashboard uses)."""
    up = GaugeMetricFamily(
        "tasklens_source_up",
        "1 if this scrape could read the source; its metrics are missing when 0",
        labels=["source"],
    )
    up.add_metric(["database"], 1.0 if snapshot.database_up else 0.0)
    if snapshot.redis_up is not None:
        up.add_metric(["redis"], 1.0 if snapshot.redis_up else 0.0)
    yield up
    if snapshot.database_up:
        yield from _outcome_families(snapshot.outcomes)
    yield from _queue_families(snapshot)
    yield from _process_families(snapshot)


def _outcome_families(outcomes: dict[tuple[str, str], Outcomes]) -> Iterator[Metric]:
    counter = CounterMetricFamily(
        "tasklens_task_outcomes",
        "Log rows that became this terminal status (cluster-wide; never decreased by "
        "retention; a corrected terminal status counts under both)",
        labels=["task_name", "status"],
    )
    histogram = HistogramMetricFamily(
        "tasklens_task_duration_seconds",
        "Durations of the rows counted in tasklens_task_outcomes_total that have one "
        "(cluster-wide)",
        labels=["task_name", "status"],
    )
    for (name, status), outcome in sorted(outcomes.items()):
        counter.add_metric([name, status], outcome.count)
        if not outcome.bins:
            continue
        cumulative, buckets, below = 0, [], sorted(outcome.bins.items())
        position = 0
        for edge_bin, seconds in BUCKET_EDGES_SECONDS:
            while position < len(below) and below[position][0] <= edge_bin:
                cumulative += below[position][1]
                position += 1
            buckets.append((repr(seconds), cumulative))
        buckets.append(("+Inf", sum(outcome.bins.values())))
        histogram.add_metric([name, status], buckets, outcome.duration_ms_sum / 1000)
    yield counter
    yield histogram


def _queue_families(snapshot: Snapshot) -> Iterator[Metric]:
    if not snapshot.priorities and snapshot.workers_online is None:
        return
    depth = GaugeMetricFamily(
        "tasklens_queue_depth",
        "Messages waiting, not yet delivered to any worker (cluster-wide)",
        labels=["priority"],
    )
    in_flight = GaugeMetricFamily(
        "tasklens_queue_in_flight",
        "Messages delivered to a worker, not yet acknowledged (cluster-wide)",
        labels=["priority"],
    )
    age = GaugeMetricFamily(
        "tasklens_queue_oldest_waiting_age_seconds",
        "Age of the oldest message no worker has taken yet; 0 when none waits (cluster-wide)",
        labels=["priority"],
    )
    for priority in snapshot.priorities:
        depth.add_metric([priority.name], priority.depth)
        in_flight.add_metric([priority.name], priority.in_flight)
        age.add_metric([priority.name], priority.oldest_waiting_age_seconds)
    yield from (depth, in_flight, age)
    if snapshot.workers_online is not None:
        yield GaugeMetricFamily(
            "tasklens_workers_online",
            "Workers with a heartbeat in the last 30 s (cluster-wide)",
            value=snapshot.workers_online,
        )
    if snapshot.rows_dropped is not None:
        yield CounterMetricFamily(
            "tasklens_log_rows_dropped",
            "Lifecycle rows any recorder had to drop, the database and Redis both failing "
            "(cluster-wide, since Redis's data began; embedded: this process's)",
            value=snapshot.rows_dropped,
        )
    if snapshot.spilled_batches is not None:
        yield GaugeMetricFamily(
            "tasklens_log_spilled_batches",
            "Batches of rows spilled to Redis while the database refused them, not yet "
            "written (cluster-wide)",
            value=snapshot.spilled_batches,
        )
    if snapshot.lost_messages is not None:
        yield CounterMetricFamily(
            "tasklens_lost_messages",
            "Pending rows closed as failed because Redis no longer held their message "
            "(cluster-wide)",
            value=snapshot.lost_messages,
        )
    yield from _recorder_families(
        "worker", "a worker", dict(sorted(snapshot.worker_recorders.items()))
    )


def _process_families(snapshot: Snapshot) -> Iterator[Metric]:
    clients = GaugeMetricFamily(
        "tasklens_api_websocket_clients",
        "Live-feed WebSocket clients of this API process",
        labels=["process"],
    )
    clients.add_metric([snapshot.process], snapshot.websocket_clients)
    yield clients
    if snapshot.recorder is not None:
        yield from _recorder_families(
            "api", "this API process", {snapshot.process: snapshot.recorder}
        )


def _recorder_families(
    kind: str, whose: str, recorders: dict[str, RecorderFigures]
) -> Iterator[Metric]:
    """Per-process recorder figures: `worker` ones come from heartbeats (online workers)."""
    if not recorders:
        return
    label = "worker" if kind == "worker" else "process"
    buffered = GaugeMetricFamily(
        f"tasklens_{kind}_recorder_buffered_rows",
        f"Lifecycle rows waiting in {whose}'s recorder to be written",
        labels=[label],
    )
    dropped = CounterMetricFamily(
        f"tasklens_{kind}_recorder_rows_dropped",
        f"Lifecycle rows {whose}'s recorder dropped since it started",
        labels=[label],
    )
    failures = CounterMetricFamily(
        f"tasklens_{kind}_recorder_write_failures",
        f"Failed database writes of {whose}'s recorder since it started",
        labels=[label],
    )
    for name, figures in recorders.items():
        buffered.add_metric([name], figures.buffered_rows)
        dropped.add_metric([name], figures.rows_dropped)
        failures.add_metric([name], figures.write_failures)
    yield from (buffered, dropped, failures)


class MetricsExporter:
    """One per app: its own registry (never the process-global one, which would mix in
    whatever else the process registers), fed the snapshot read just before rendering."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._snapshot: Snapshot | None = None
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        if self._snapshot is not None:
            yield from families(self._snapshot)

    async def render(self, runtime: Runtime) -> bytes:
        snapshot = await read_snapshot(runtime)
        # No await between setting and rendering: concurrent scrapes cannot mix snapshots.
        self._snapshot = snapshot
        return generate_latest(self.registry)
