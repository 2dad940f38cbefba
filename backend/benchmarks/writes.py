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
import time
from datetime import UTC, datetime, timedelta

from tasklens.tracking.database import connect_postgres
from tasklens.tracking.lifecycle import LifecycleChange
from tasklens.tracking.log_store import PostgresLogStore, _row
from tasklens.tracking.models import TaskStatus

TARGET = 5_000


def _event(task: int, status: TaskStatus, prefix: str, now: datetime) -> LifecycleChange:
    created = now - timedelta(microseconds=task)
    change = LifecycleChange(
        task_id=f"{prefix}-{task}",
        task_name=f"task_{task % 10}",
        status=status,
        timestamp=now,
        created_at=created,
        queue="tasklens",
    )
    if status is TaskStatus.PENDING:
        change.params = {"n": task, "subject": f"octocat/repo-{task % 100}"}
    elif status is TaskStatus.RUNNING:
        change.worker, change.started_at = "bench:1", now
    else:
        change.created_at = None  # the worker's outcome knows no enqueue time
        change.completed_at, change.duration_ms = now, float(task % 997)
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


async def _batched(database_url: str, tasks: int, batch_events: int, writers: int) -> float:
    """Events/s through `PostgresLogStore.upsert`, `writers` connections side by side."""
    per_writer = [
        _batches(tasks // writers, batch_events, f"batched-{run}-{w}")
        for w in range(writers)
        for run in [time.time_ns()]
    ]
    events = sum(len(b) for batches in per_writer for b in batches)
    now = datetime.now(UTC)
    stores = [PostgresLogStore(database_url) for _ in range(writers)]

    async def write(store: PostgresLogStore, batches: list[list[LifecycleChange]]) -> None:
        for batch in batches:
            await store.upsert(batch)

    for store in stores:  # connect (and prepare) before the clock starts
        await store.upsert([_event(0, TaskStatus.PENDING, f"warm-{time.time_ns()}", now)])
    started = time.perf_counter()
    await asyncio.gather(*(write(s, b) for s, b in zip(stores, per_writer, strict=True)))
    seconds = time.perf_counter() - started
    for store in stores:
        await store.close()
    return events / seconds


async def _naive(database_url: str, tasks: int) -> float:
    """One upsert statement per event, as a per-row middleware would write."""
    columns = (
        "task_id, attempt, task_name, status, params, queue, worker, progress, "
        "progress_message, result, started_at, completed_at, duration_ms, error_message, "
        "error_traceback, created_at, updated_at"
    )
    sql = (
        f"INSERT INTO task_execution_logs ({columns}) VALUES ($1::varchar, $2, $3, $4, "
        "$5::jsonb, $6, $7, $8, $9, $10::jsonb, $11, $12, $13, $14, $15, coalesce((SELECT "
        "e.created_at FROM task_execution_logs e WHERE e.task_id = $1::varchar "
        "AND e.attempt = $2 LIMIT 1), $16), $17) "
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
        started = time.perf_counter()
        for event in events:
            await statement.fetch(*_row(event, now))
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return len(events) / seconds


async def run(
    database_url: str, tasks: int, batch_events: int, writers: int, naive_tasks: int
) -> dict[str, float]:
    conn = await connect_postgres(database_url)
    try:
        await conn.execute("TRUNCATE task_execution_logs, task_log_counts, task_duration_histogram")
        await conn.execute(
            "SELECT tasklens_ensure_log_partitions(current_date - 1, current_date + 7)"
        )
    finally:
        await conn.close()
    naive = await _naive(database_url, naive_tasks)
    print(f"  naive, one statement per event: {naive:,.0f} events/s", flush=True)
    batched = await _batched(database_url, tasks, batch_events, writers)
    print(
        f"  batched upsert, {batch_events} events a batch, {writers} connection(s): "
        f"{batched:,.0f} events/s",
        flush=True,
    )
    return {"naive_events_per_s": naive, "batched_events_per_s": batched}
