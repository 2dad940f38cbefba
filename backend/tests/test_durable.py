"""A finished task's final row survives a PostgreSQL outage: workers killed during it, more
rows than the buffer holds, Redis failing too. Private PostgreSQL (and Redis) servers that
the tests stop; real API and worker processes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis
from private_services import PrivatePostgres, PrivateRedis
from support import fetch_log_rows, free_port, outage_stack, wait_for

from tasklens.reaper import LOST_ERROR
from tasklens.tracking.database import connect_postgres
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.log_spill import LogSpill, spill_state
from tasklens.tracking.log_store import PostgresLogStore
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import LifecycleRecorder
from tasklens.tracking.redis_connection import connect
from tasklens.tracking.redis_keys import LOG_SPILL


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    server.ctl("start")
    yield server
    server.destroy()


async def fetch_rows(database_url: str) -> list[dict[str, Any]]:
    return await fetch_log_rows(
        database_url, "task_id, attempt, status, error_message, result", timeout=3
    )


def log_rows(database_url: str) -> list[dict[str, Any]]:
    """Every row, or [] while the database is down."""
    try:
        return asyncio.run(fetch_rows(database_url))
    except (OSError, asyncpg.PostgresError):
        return []


def by_task(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    tasks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        tasks[row["task_id"]].append(row)
    return tasks


def acknowledged_tasks(redis_url: str, stream: str = "tasklens") -> set[str]:
    """Task ids whose message the worker acknowledged (delivered, no longer pending)."""
    with redis.Redis.from_url(redis_url) as client:
        groups: Any = client.xinfo_groups(stream)
        [group] = [g for g in groups if g["name"] in (b"tasklens", "tasklens")]
        pending: Any = client.xpending_range(stream, "tasklens", "-", "+", 10_000)
        entries: Any = client.xrange(stream, max=group["last-delivered-id"])
    unacknowledged = {p["message_id"] for p in pending}
    return {
        orjson.loads(fields[b"data"])["task_id"]
        for entry_id, fields in entries
        if entry_id not in unacknowledged
    }


def unacknowledged(redis_url: str, stream: str = "tasklens") -> tuple[int, int]:
    """(messages not yet delivered, delivered but not acknowledged) of the task queue."""
    with redis.Redis.from_url(redis_url) as client:
        groups: Any = client.xinfo_groups(stream)
    [group] = [g for g in groups if g["name"] in (b"tasklens", "tasklens")]
    return int(group["lag"] or 0), int(group["pending"])


def test_a_worker_killed_during_a_postgres_outage_leaves_no_finished_task_pending(
    tmp_path: Path, private_postgres: PrivatePostgres, redis_url: str
) -> None:
    database_url = private_postgres.url
    stack = outage_stack(
        tmp_path,
        database_url,
        redis_url,
        TASKLENS_TASK_TIMEOUT_SECONDS="5",  # a lost message is delivered again after 17.5 s
        TASKLENS_WORKER_CONCURRENCY="20",
    )
    try:
        api = stack.start_api()
        task_ids = set(api.enqueue("demo.slow", count=300, steps=2, step_seconds=0.25))
        wait_for(lambda: len(log_rows(database_url)) == 300, timeout=30, what="300 pending rows")
        private_postgres.ctl("stop")  # immediate, as in a crash
        doomed = stack.start_worker("worker-a")
        # 15 batches of 20 tasks of 0.5 s: killed about a third of the way through, with
        # tasks running, finished ones whose rows are only in its memory, others queued.
        wait_for(
            lambda: len(acknowledged_tasks(redis_url)) >= 100,
            timeout=60,
            what="100 tasks finished and acknowledged",
            interval=0.05,
        )
        doomed.kill_hard()
        finished_before_kill = acknowledged_tasks(redis_url)
        assert len(finished_before_kill) < 300, "the worker was killed too late to prove much"

        private_postgres.ctl("start")
        stack.start_worker("worker-b")

        def settled() -> bool:
            tasks = by_task(log_rows(database_url))
            return len(tasks) == 300 and all(
                attempts[-1]["status"] == "success"
                and all(a["status"] not in ("pending", "running") for a in attempts)
                for attempts in tasks.values()
            )

        wait_for(settled, timeout=90, what="every task to end, none pending", interval=1)
        tasks = by_task(log_rows(database_url))
        assert set(tasks) == task_ids
        for task_id in finished_before_kill:  # its message is gone: its true final row
            first = tasks[task_id][0]
            assert (first["attempt"], first["status"]) == (1, "success"), tasks[task_id]
            assert first["error_message"] is None and first["result"] is not None
        for attempts in tasks.values():  # a lost attempt is failed; a finished one never is
            for attempt in attempts[:-1]:
                assert attempt["status"] == "success" or attempt["error_message"] == LOST_ERROR
        with redis.Redis.from_url(redis_url) as client:
            assert client.xlen(LOG_SPILL) == 0  # drained
    finally:
        stack.stop_all()


def test_more_rows_than_the_buffer_during_an_outage_keep_every_final_state(
    tmp_path: Path, private_postgres: PrivatePostgres, redis_url: str
) -> None:
    database_url = private_postgres.url
    stack = outage_stack(tmp_path, database_url, redis_url, TASKLENS_LOG_BUFFER_MAX="100")
    try:
        api = stack.start_api()
        task_ids = set(api.enqueue("demo.quick", count=1000))
        wait_for(lambda: len(log_rows(database_url)) == 1000, timeout=30, what="1,000 pending rows")
        private_postgres.ctl("stop")
        worker = stack.start_worker()
        # Every message acknowledged: each task's final row is durable somewhere.
        wait_for(
            lambda: unacknowledged(redis_url) == (0, 0),
            timeout=60,
            what="the worker to finish all 1,000 tasks",
            interval=0.2,
        )
        time.sleep(1)  # the outage goes on a little longer
        private_postgres.ctl("start")

        def all_logged() -> bool:
            rows = log_rows(database_url)
            return sum(1 for r in rows if r["status"] == "success") == 1000

        wait_for(all_logged, timeout=60, what="all 1,000 tasks logged successful", interval=1)
        rows = log_rows(database_url)
        assert {r["task_id"] for r in rows} == task_ids
        assert len(rows) == 1000  # one attempt each: nothing ran twice, nothing relabelled
        assert all(r["status"] == "success" and r["error_message"] is None for r in rows)
        with api.client() as client:
            health = client.get("/health/queue").json()
            metrics = client.get("/api/v1/monitoring/metrics").json()
        assert health["log_rows_dropped"] == 0 and metrics["log_rows_dropped"] == 0
        wait_for(
            lambda: _unwritten(api) == 0, timeout=30, what="the spill to be drained", interval=0.5
        )
        assert "rows are spilled to Redis until it is back" in worker.log()
        wait_for(
            lambda: "lifecycle log writes recovered" in worker.log(),
            timeout=20,
            what="the worker to see the database back",
        )
        summary = [line for line in worker.log().splitlines() if "writes recovered" in line]
        assert len(summary) == 1 and "0 rows dropped" in summary[0], summary
    finally:
        stack.stop_all()


def _unwritten(api: Any) -> int:
    with api.client() as client:
        return int(client.get("/health/queue").json()["log_batches_unwritten"])


T0 = as_time(datetime(2026, 1, 1, tzinfo=UTC))


def change(task_id: str, status: TaskStatus, **fields: Any) -> LifecycleChange:
    return LifecycleChange(task_id=task_id, task_name="job", status=status, timestamp=T0, **fields)


async def test_with_the_database_and_redis_down_final_states_outlive_earlier_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private_redis = PrivateRedis(tmp_path)  # not started yet: nothing listens on its port
    store = PostgresLogStore(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none")
    rec = LifecycleRecorder(store, None, buffer_max=100, spill=LogSpill(private_redis.url))
    acknowledged: list[Any] = []

    async def acknowledge(acks: list[Any]) -> None:
        acknowledged.extend(acks)

    rec.acknowledge = acknowledge
    for i in range(100):
        rec.record(change(f"done-{i}", TaskStatus.SUCCESS))
        rec.when_written(f"message-{i}")
    for i in range(50):
        rec.record(change(f"run-{i}", TaskStatus.RUNNING))
    caplog.set_level(logging.WARNING, logger="tasklens.tracking.recorder")
    await rec.flush()  # the database and the spill refuse: earlier states go first
    assert rec.stats.rows_dropped == 50 and rec.backlog == 100
    assert all(status is TaskStatus.SUCCESS for status in _statuses(rec))
    assert acknowledged == [] and rec.stats.acks_withheld == 0  # every final row still kept

    for i in range(20):
        rec.record(change(f"late-{i}", TaskStatus.SUCCESS))
    await rec.flush()  # now final rows must go: their messages stay unacknowledged
    assert rec.stats.rows_dropped == 70 and rec.backlog == 100
    assert acknowledged == [] and rec.stats.acks_withheld == 100
    dropping = [r for r in caplog.records if "buffer full" in r.getMessage()]
    assert len(dropping) == 1  # once per outage, not once per shed

    private_redis.start()
    try:
        rec.record(change("after", TaskStatus.SUCCESS))
        rec.when_written("message-after")
        await rec.flush()  # the database is still down: spilled, then acknowledged
        assert acknowledged == ["message-after"]
        assert rec.backlog == 0 and rec.stats.rows_spilled == 101
        client = connect(private_redis.url)
        try:
            dropped, entries = await spill_state(client)
        finally:
            await client.aclose()
        assert dropped == 70 and entries == 1  # the count /health/queue reports
    finally:
        await rec.stop(timeout=5)
        private_redis.stop()


def _statuses(rec: LifecycleRecorder) -> list[TaskStatus]:
    return [c.status for c in rec._rows.values()]


async def test_drainers_write_every_spilled_row_once_even_when_one_dies_mid_drain(
    postgres_url: str, redis_url: str
) -> None:
    writer = LogSpill(redis_url)
    tasks = [f"task-{i}" for i in range(600)]
    for start in range(0, 600, 100):  # pending rows and final rows in separate entries
        chunk = tasks[start : start + 100]
        await writer.spill(
            [change(t, TaskStatus.PENDING, created_at=T0, params={"t": t}) for t in chunk]
        )
        await writer.spill(
            [change(t, TaskStatus.SUCCESS, result={"ok": t}, completed_at=T0) for t in chunk]
        )

    async def dies(rows: list[LifecycleChange]) -> None:
        raise ConnectionResetError("killed mid-write")

    doomed = LogSpill(redis_url, claim_idle_ms=500)
    with pytest.raises(ConnectionResetError):
        await doomed.drain(dies)  # took a batch of entries and never acknowledged them
    await doomed.close()

    stores = [PostgresLogStore(postgres_url), PostgresLogStore(postgres_url)]
    drainers = [LogSpill(redis_url, claim_idle_ms=500) for _ in stores]

    async def drain(spill: LogSpill, store: PostgresLogStore) -> int:
        written, deadline = 0, time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = await spill.drain(store.upsert)
            written += rows
            if not rows:
                if await writer_len(redis_url) == 0:
                    return written
                await asyncio.sleep(0.2)  # the dead drainer's entries are not idle enough yet
        raise AssertionError("the spill was not drained in time")

    try:
        results = await asyncio.gather(
            *(drain(s, st) for s, st in zip(drainers, stores, strict=True))
        )
    finally:
        for spill, store in zip(drainers, stores, strict=True):
            await spill.close()
            await store.close()
        await writer.close()
    assert sum(results) >= 600
    rows = await fetch_rows(postgres_url)
    assert len(rows) == 600 and {r["task_id"] for r in rows} == set(tasks)
    assert all(r["status"] == "success" and r["result"] is not None for r in rows)


async def test_an_entry_an_earlier_release_spilled_lands_on_the_row_a_new_worker_writes(
    postgres_url: str, redis_url: str
) -> None:
    """Before round 5 a spill entry held its times as RFC 3339 text (orjson's datetimes); the
    entries left in Redis by an upgraded fleet drain onto the same rows, to the microsecond."""
    enqueued = datetime(2026, 1, 1, 0, 0, 0, 123457, tzinfo=UTC)
    earlier = {
        "task_id": "old",
        "task_name": "job",
        "status": "pending",
        "timestamp": enqueued.isoformat(),
        "attempt": 1,
        "created_at": enqueued.isoformat(),
        "params": {"n": 1},
    }
    client = connect(redis_url)
    try:
        await client.xadd(LOG_SPILL, {b"r": orjson.dumps([earlier])})
    finally:
        await client.aclose()
    store, spill = PostgresLogStore(postgres_url), LogSpill(redis_url)
    try:
        assert await spill.drain(store.upsert) == 1
        at = as_time(enqueued)
        await store.upsert(
            [change("old", TaskStatus.SUCCESS, created_at=at, started_at=at, completed_at=at + 1)]
        )
    finally:
        await spill.close()
        await store.close()
    [row] = await fetch_log_rows(postgres_url, "status, params, created_at", timeout=3)
    assert (row["status"], row["params"], row["created_at"]) == ("success", '{"n": 1}', enqueued)


async def writer_len(redis_url: str) -> int:
    client = connect(redis_url)
    try:
        return int(await client.xlen(LOG_SPILL))
    finally:
        await client.aclose()


async def test_a_success_written_after_the_reaper_closed_its_row_takes_the_row_whole(
    postgres_url: str,
) -> None:
    store = PostgresLogStore(postgres_url)
    try:
        await store.upsert([change("t", TaskStatus.RUNNING, created_at=T0, started_at=T0)])
        conn = await connect_postgres(postgres_url)
        try:  # what the reaper does to a running row of a dead worker
            await conn.execute(
                "UPDATE task_execution_logs SET status = 'failed', error_message = $1",
                LOST_ERROR,
            )
        finally:
            await conn.close()
        await store.upsert([change("t", TaskStatus.SUCCESS, result=1, completed_at=T0)])
    finally:
        await store.close()
    [row] = await fetch_rows(postgres_url)
    assert (row["status"], row["error_message"], row["result"]) == ("success", None, "1")


def test_finished_messages_are_acknowledged_per_flush_not_per_task(
    tmp_path: Path, postgres_url: str
) -> None:
    private_redis = PrivateRedis(tmp_path).start()
    stack = outage_stack(tmp_path, postgres_url, private_redis.url)
    try:
        api = stack.start_api()
        stack.start_worker()
        api.enqueue("demo.noop", count=500)

        def all_acknowledged() -> bool:
            return len(acknowledged_tasks(private_redis.url)) == 500

        wait_for(all_acknowledged, timeout=60, what="500 tasks acknowledged", interval=0.2)
        with redis.Redis.from_url(private_redis.url) as client:
            stats: Any = client.info("commandstats")
        # One XACK per flush for every message it made durable, not one per task.
        assert stats["cmdstat_xack"]["calls"] < 250, stats["cmdstat_xack"]
        wait_for(
            lambda: sum(r["status"] == "success" for r in log_rows(postgres_url)) == 500,
            timeout=30,
            what="500 successful rows",
        )
    finally:
        stack.stop_all()
        private_redis.stop()
