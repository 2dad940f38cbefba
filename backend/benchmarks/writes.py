"""Lifecycle events written into PostgreSQL per second: the log store's batched upsert
against the naive one-statement-per-event upsert, in the same run, on the real schema
(day partitions, counts and histogram triggers).

The stream is what one worker host produces: tasks move pending → running → success (every
twentieth fails), each event its own row change (no two events of a batch share a row, so
the recorder's merging of repeated changes, which makes real batches cheaper, is not
counted). A batch holds the pending events of one chunk of tasks, the running events of
the chunk before and the outcomes of the one before that, as a steady stream does.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from datetime import UTC, datetime, timedelta

from tasklens.tracking.database import connect_postgres
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.log_store import PostgresLogStore, _row
from tasklens.tracking.models import TaskStatus

TARGET = 30_000


def _event(task: int, status: TaskStatus, prefix: str, now: datetime) -> LifecycleChange:
    created = now - timedelta(microseconds=task)
    change = LifecycleChange(
        task_id=f"{prefix}-{task}",
        task_name=f"task_{task % 10}",
        status=status,
        timestamp=as_time(now),
        created_at=as_time(created),
        queue="tasklens",
    )
    if status is TaskStatus.PENDING:
        change.params = {"n": task, "subject": f"octocat/repo-{task % 100}"}
    elif status is TaskStatus.RUNNING:
        change.worker, change.started_at = "bench:1", as_time(now)
    else:
        change.created_at = None  # the worker's outcome knows no enqueue time
        change.completed_at, change.duration_ms = as_time(now), float(task % 997)
        change.result = {"ok": True} if status is TaskStatus.SUCCESS else None
        change.error_message = "ValueError: bad" if status is TaskStatus.FAILED else None
    return change


def _batches(tasks: int, batch_events: int, prefix: str) -> list[list[LifecycleChange]]:
    now = datetime.now(UTC)
    chunk = max(1, batch_events // 3)
    starts = list(range(0, tasks, chunk))
    batches = []
    for k in range(len(starts) + 2):
        batch: list[LifecycleChange] = []
        for lag, status in enumerate((TaskStatus.PENDING, TaskStatus.RUNNING, None)):
            if 0 <= k - lag < len(starts):
                first = starts[k - lag]
                for task in range(first, min(first + chunk, tasks)):
                    outcome = TaskStatus.FAILED if task % 20 == 0 else TaskStatus.SUCCESS
                    batch.append(_event(task, status or outcome, prefix, now))
        batches.append(batch)
    return batches


def _server_cpu(pids: list[int]) -> float | None:
    """CPU seconds the PostgreSQL backends `pids` have used, when the server runs on this
    machine (its /proc readable): a figure a busy machine disturbs less than wall time."""
    try:
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


def _per_event_us(before: float | None, after: float | None, events: int) -> float:
    """µs per event, NaN when the server's CPU could not be read."""
    if before is None or after is None:
        return math.nan
    return 1e6 * (after - before) / events


async def _batched(database_url: str, tasks: int, batch_events: int, writers: int) -> float:
    """Events/s through `PostgresLogStore.upsert` (the scrape benchmark's write cost)."""
    figures, _ = await _timed_batches(database_url, tasks, batch_events, writers)
    return figures["batched_events_per_s"]


async def _timed_batches(
    database_url: str, tasks: int, batch_events: int, writers: int
) -> tuple[dict[str, float], list[str]]:
    """Events/s through `PostgresLogStore.upsert`, `writers` connections side by side (as
    the recorders of that many worker processes on one host), and the prefixes written."""
    run = time.time_ns()
    prefixes = [f"batched-{run}-{w}" for w in range(writers)]
    per_writer = [_batches(tasks // writers, batch_events, prefix) for prefix in prefixes]
    events = sum(len(b) for batches in per_writer for b in batches)
    now = datetime.now(UTC)
    stores = [PostgresLogStore(database_url) for _ in range(writers)]

    async def write(store: PostgresLogStore, batches: list[list[LifecycleChange]]) -> None:
        for batch in batches:
            await store.upsert(batch)

    for store in stores:  # connect (and prepare) before the clock starts
        await store.upsert([_event(0, TaskStatus.PENDING, f"warm-{run}", now)])
    pids = [(await store._connection()).get_server_pid() for store in stores]
    server, client = _server_cpu(pids), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(write(s, b) for s, b in zip(stores, per_writer, strict=True)))
    seconds = time.perf_counter() - started
    client, server = time.process_time() - client, _per_event_us(server, _server_cpu(pids), events)
    for store in stores:
        await store.close()
    figures = {
        "batched_events_per_s": events / seconds,
        "batched_server_cpu_us": server,
        "batched_client_cpu_us": 1e6 * client / events,
    }
    return figures, prefixes


async def _verify(database_url: str, prefixes: list[str], tasks_each: int) -> int:
    """Nothing lost: every task of every writer has exactly one row, in its final status
    (every twentieth failed, the others succeeded), and the trigger-kept counts agree with
    the log. Raises if not; returns the tasks checked."""
    conn = await connect_postgres(database_url)
    try:
        for prefix in prefixes:
            rows, tasks, failed, succeeded = await conn.fetchrow(
                "SELECT count(*), count(DISTINCT (task_id, attempt)), "
                "count(*) FILTER (WHERE status = 'failed' AND error_message IS NOT NULL), "
                "count(*) FILTER (WHERE status = 'success' AND started_at IS NOT NULL "
                "AND completed_at IS NOT NULL AND params IS NOT NULL) "
                "FROM task_execution_logs WHERE task_id LIKE $1",
                f"{prefix}-%",
            )
            want_failed = len(range(0, tasks_each, 20))
            if (rows, tasks, failed, succeeded) != (
                tasks_each,
                tasks_each,
                want_failed,
                tasks_each - want_failed,
            ):
                raise RuntimeError(
                    f"{prefix}: {rows} rows of {tasks} tasks, {failed} failed and "
                    f"{succeeded} succeeded; wanted {tasks_each} tasks, {want_failed} failed"
                )
        mismatched = await conn.fetchval(
            "SELECT count(*) FROM (SELECT status, count(*) AS n FROM task_execution_logs "
            "GROUP BY 1) AS log FULL JOIN (SELECT status, sum(count) AS n FROM task_log_counts "
            "GROUP BY 1 HAVING sum(count) <> 0) AS c USING (status) "
            "WHERE log.n IS DISTINCT FROM c.n"
        )
        if mismatched:
            raise RuntimeError(f"task_log_counts disagrees with the log on {mismatched} status(es)")
    finally:
        await conn.close()
    return tasks_each * len(prefixes)


async def _naive(database_url: str, tasks: int) -> dict[str, float]:
    """One upsert statement per event, as a per-row middleware would write."""
    columns = (
        "task_id, attempt, task_name, status, params, queue, worker, progress, "
        "progress_message, result, started_at, completed_at, duration_ms, error_message, "
        "error_traceback, run_at, created_at, updated_at"
    )
    sql = (
        f"INSERT INTO task_execution_logs ({columns}) VALUES ($1::varchar, $2, $3, $4, "
        "$5::jsonb, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15, $16, coalesce((SELECT "
        "e.created_at FROM task_execution_logs e WHERE e.task_id = $1::varchar "
        "AND e.attempt = $2 LIMIT 1), $17), $18) "
        "ON CONFLICT (task_id, attempt, created_at) DO UPDATE SET status = excluded.status, "
        "worker = coalesce(excluded.worker, task_execution_logs.worker), "
        "duration_ms = coalesce(excluded.duration_ms, task_execution_logs.duration_ms), "
        "updated_at = excluded.updated_at"
    )
    batches = _batches(tasks, 3, f"naive-{time.time_ns()}")
    events = [e for batch in batches for e in batch]
    conn = await connect_postgres(database_url)
    try:
        statement = await conn.prepare(sql)
        now = datetime.now(UTC)
        pid = [conn.get_server_pid()]
        server = _server_cpu(pid)
        started = time.perf_counter()
        for event in events:
            await statement.fetch(*_row(event, now))
        seconds = time.perf_counter() - started
        server_us = _per_event_us(server, _server_cpu(pid), len(events))
    finally:
        await conn.close()
    return {"naive_events_per_s": len(events) / seconds, "naive_server_cpu_us": server_us}


async def _reset(database_url: str) -> None:
    conn = await connect_postgres(database_url)
    try:
        await conn.execute(
            "TRUNCATE task_execution_logs, task_log_counts, task_duration_histogram, "
            "task_outcome_totals"
        )
        await conn.execute(
            "SELECT tasklens_ensure_log_partitions(current_date - 1, current_date + 7)"
        )
    finally:
        await conn.close()


async def _measure(
    database_url: str, tasks: int, batch_events: int, writers: int
) -> dict[str, float]:
    """One batched run on an emptied log, verified afterwards."""
    await _reset(database_url)
    figures, prefixes = await _timed_batches(database_url, tasks, batch_events, writers)
    checked = await _verify(database_url, prefixes, tasks // writers)
    print(
        f"  batched upsert, {batch_events} events a batch, {writers} writer(s): "
        f"{figures['batched_events_per_s']:,.0f} events/s; PostgreSQL CPU "
        f"{figures['batched_server_cpu_us']:.1f} µs/event, benchmark process CPU "
        f"{figures['batched_client_cpu_us']:.1f} µs/event; verified: {checked:,} tasks, "
        "each in its final status exactly once",
        flush=True,
    )
    return figures


async def run(
    database_url: str, tasks: int, batch_events: int, writers: int, naive_tasks: int
) -> dict[str, float]:
    """The naive baseline, one writer, and (when asked for more) `writers` writers, all in
    this run. The rate is 3 x tasks / elapsed; the stream per writer is the same shape."""
    await _reset(database_url)
    naive = await _naive(database_url, naive_tasks)
    print(
        f"  naive, one statement per event: {naive['naive_events_per_s']:,.0f} events/s; "
        f"PostgreSQL CPU {naive['naive_server_cpu_us']:.1f} µs/event",
        flush=True,
    )
    one = await _measure(database_url, tasks, batch_events, 1)
    figures = {**naive, **{f"one_{k}": v for k, v in one.items()}}
    figures.update(
        await _measure(database_url, tasks, batch_events, writers) if writers > 1 else one
    )
    return figures
