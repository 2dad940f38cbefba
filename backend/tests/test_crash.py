"""Crash safety: workers killed mid-flight, lost rows closed by the reaper, redelivered
tasks logged as new attempts. Real worker and API processes, real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from support import Stack, fetch_log_rows, wait_for

from tasklens import migrate
from tasklens.reaper import LOST_ERROR, NEVER_RAN_ERROR, Reaper, this_worker
from tasklens.tracking.database import connect_postgres, create_engine, own_name
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.middleware import HANDED_BACK_ERROR, STOPPED_ERROR
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import build_recorder
from tasklens.tracking.redis_keys import WORKERS


def log_rows(database_url: str) -> list[dict[str, Any]]:
    columns = "task_id, attempt, status, worker, error_message"
    return asyncio.run(fetch_log_rows(database_url, columns))


def attempts_by_task(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    tasks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        tasks[row["task_id"]].append(row)
    return tasks


def test_200_tasks_of_a_killed_worker_end_terminal_with_the_lost_attempt_logged(
    distributed: Stack,
) -> None:
    distributed.env |= {
        "TASKLENS_TASK_TIMEOUT_SECONDS": "5",  # redelivery after 5 + 2.5 + 10 s idle
        "TASKLENS_WORKER_CONCURRENCY": "250",
    }
    database_url = distributed.env["TASKLENS_DATABASE_URL"]
    api = distributed.start_api()
    doomed = distributed.start_worker("worker-a")
    task_ids = set(api.enqueue("demo.slow", count=200, steps=8, step_seconds=0.5))  # 4 s each

    def all_running() -> bool:
        rows = log_rows(database_url)
        return sum(1 for r in rows if r["status"] == "running") == 200

    wait_for(all_running, timeout=20, what="200 tasks running on worker-a")
    doomed.kill_hard()
    killed_at = time.monotonic()
    [lost_worker] = {r["worker"] for r in log_rows(database_url)}
    distributed.start_worker("worker-b")

    def lost_rows_closed() -> bool:
        rows = log_rows(database_url)
        return not [r for r in rows if r["worker"] == lost_worker and r["status"] == "running"]

    # Closed by the reaper at most one pass (5 s ± 20 %) after the longest a task may run
    # (5 + 2.5 + 10 s), wherever that lands; a margin for this busy machine on top.
    wait_for(lost_rows_closed, timeout=17.5 + 6 + 10, what="the lost rows closed", interval=1)
    closed_after = time.monotonic() - killed_at

    def all_finished() -> bool:
        tasks = attempts_by_task(log_rows(database_url))
        return len(tasks) == 200 and all(a[-1]["status"] == "success" for a in tasks.values())

    wait_for(all_finished, timeout=90, what="every task to finish on worker-b", interval=1)
    rows = log_rows(database_url)
    tasks = attempts_by_task(rows)
    assert set(tasks) == task_ids
    for attempts in tasks.values():
        first, second = attempts  # exactly two attempts: the lost one and the redelivered one
        assert (first["attempt"], first["status"], first["error_message"]) == (
            1,
            "failed",
            LOST_ERROR,
        )
        assert first["worker"] == lost_worker
        assert (second["attempt"], second["status"]) == (2, "success")
        assert second["worker"] not in (None, lost_worker)
    assert not [r for r in rows if r["status"] in ("running", "pending")]
    # Redelivery waits for the idle timeout (17.5 s); the rest is the 4 s run and the reaper.
    assert time.monotonic() - killed_at < 80
    assert closed_after < 17.5 + 6 + 10
    detail = api.task(next(iter(task_ids)))
    assert detail["status"] == "success"
    assert [a["status"] for a in detail["attempts"]] == ["failed", "success"]


def test_the_reaper_closes_each_lost_row_once_when_many_processes_run_it(
    postgres_url: str, redis_url: str
) -> None:
    """Four reapers at once over rows of a worker whose heartbeat stopped a minute ago, plus
    one row too old for any live task, and one of a worker still alive (left alone)."""
    now = time.time()
    with redis.Redis.from_url(redis_url) as client:
        client.hset(WORKERS, "host:1", json.dumps({"last_seen": now - 60}))
        client.hset(WORKERS, "host:2", json.dumps({"last_seen": now}))

    async def scenario() -> list[int]:
        conn = await connect_postgres(postgres_url)
        try:
            await conn.execute(
                "INSERT INTO task_execution_logs (task_id, attempt, task_name, status, worker, "
                "started_at, created_at, updated_at) "
                "SELECT 'dead-' || i, 1, 'demo.slow', 'running', 'host:1', now(), now(), now() "
                "FROM generate_series(1, 300) i UNION ALL "
                "SELECT 'alive', 1, 'demo.slow', 'running', 'host:2', now(), now(), now() "
                "UNION ALL SELECT 'old', 1, 'demo.slow', 'running', 'host:2', "
                "now() - interval '1 hour', now() - interval '1 hour', now()"
            )
        finally:
            await conn.close()
        engines = [create_engine(postgres_url) for _ in range(4)]
        reapers = [Reaper(e, max_task_seconds=600, redis_url=redis_url) for e in engines]
        try:
            closed = await asyncio.gather(*(r.reap() for r in reapers))
        finally:
            for reaper, engine in zip(reapers, engines, strict=True):
                await reaper.stop()
                await engine.dispose()
        return list(closed)

    closed = asyncio.run(scenario())
    assert sum(closed) == 301  # each row closed exactly once, whoever got there first
    rows = {r["task_id"]: r for r in log_rows(postgres_url)}
    assert rows["alive"]["status"] == "running"
    assert rows["old"]["status"] == "failed"
    assert all(
        r["status"] == "failed" and r["error_message"] == LOST_ERROR
        for task_id, r in rows.items()
        if task_id.startswith("dead-")
    )


def test_a_live_heartbeat_listing_a_task_keeps_its_old_row_running_and_only_that_row(
    postgres_url: str, redis_url: str
) -> None:
    """Rows past the age limit: the one whose worker's heartbeat lists it stays `running`; one
    its worker lost track of, one whose task id another worker lists, and one listed by a
    heartbeat that stopped beating 20 s ago (killed, not yet declared dead) are closed. One of
    a worker with no heartbeat at all (Redis lost the hash) waits for the next beats."""
    with redis.Redis.from_url(redis_url) as client:
        beat = {"last_seen": time.time(), "tasks": ["long"]}
        client.hset(WORKERS, "host:1", json.dumps(beat))
        client.hset(WORKERS, "host:2", json.dumps({**beat, "tasks": ["elsewhere"]}))
        stale = {"last_seen": time.time() - 20, "tasks": ["stale"]}
        client.hset(WORKERS, "host:3", json.dumps(stale))

    async def scenario() -> int:
        conn = await connect_postgres(postgres_url)
        try:
            await conn.executemany(
                "INSERT INTO task_execution_logs (task_id, attempt, task_name, status, worker, "
                "started_at, created_at, updated_at) VALUES ($1, 1, 'billing.reconcile', "
                "'running', $2, now() - interval '1 hour', now() - interval '1 hour', now())",
                [
                    ("long", "host:1"),
                    ("forgotten", "host:1"),
                    ("elsewhere", "host:1"),
                    ("stale", "host:3"),
                    ("unknown", "host:9"),
                ],
            )
        finally:
            await conn.close()
        engine = create_engine(postgres_url)
        reaper = Reaper(engine, max_task_seconds=600, redis_url=redis_url)
        try:
            return await reaper.reap()
        finally:
            await reaper.stop()
            await engine.dispose()

    assert asyncio.run(scenario()) == 3
    rows = {r["task_id"]: r for r in log_rows(postgres_url)}
    assert rows["long"]["status"] == "running"
    assert rows["unknown"]["status"] == "running"
    for task_id in ("forgotten", "elsewhere", "stale"):
        assert (rows[task_id]["status"], rows[task_id]["error_message"]) == ("failed", LOST_ERROR)


def test_the_embedded_process_closes_the_rows_of_its_killed_predecessor(embedded: Stack) -> None:
    api = embedded.start_api()
    [task_id] = api.enqueue("demo.slow", steps=40, step_seconds=0.5)
    api.wait_task(task_id, "running", timeout=20)
    time.sleep(0.5)  # the running row is written (100 ms batches)
    api.process.kill_hard()

    restarted = embedded.start_api("api-restarted")
    task = restarted.wait_task(task_id, "failed", timeout=20)
    assert task["attempts"][-1]["error_message"] == LOST_ERROR


def sqlite_rows(stack: Stack) -> dict[str, tuple[str, str | None]]:
    """task_id -> (status, error_message), read from the file itself."""
    path = stack.env["TASKLENS_DATABASE_URL"].split(":///", 1)[1]
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT task_id, status, error_message FROM tasklens_task_execution_logs"
        )
        return {task_id: (status, error) for task_id, status, error in rows}


def test_what_the_embedded_server_answered_202_for_outlives_a_sigkill_right_after(
    embedded: Stack,
) -> None:
    """Its queue is its memory, so the `pending` rows are committed before the 202: a kill
    right after the answer leaves rows the next start closes, not 404s. The writes are
    batched widely here so that none lands by chance before the kill."""
    embedded.env |= {
        "TASKLENS_EVENT_FLUSH_INTERVAL_MS": "2000",
        "TASKLENS_LOG_WRITE_INTERVAL_MS": "30000",
        "TASKLENS_LOG_BATCH_SIZE": "5000",
    }
    api = embedded.start_api()
    task_ids = api.enqueue("demo.slow", count=500, steps=60, step_seconds=1)
    api.process.kill_hard()

    rows = sqlite_rows(embedded)
    logged = [rows.get(task_id, ("none", None))[0] for task_id in task_ids]
    assert set(logged) <= {"pending", "running"}, logged  # the first ones may have started

    restarted = embedded.start_api("api-restarted")
    closed = {NEVER_RAN_ERROR, LOST_ERROR}  # never started, or started and lost

    def all_closed() -> bool:
        rows.update(sqlite_rows(embedded))
        return all(rows[t][0] == "failed" and rows[t][1] in closed for t in task_ids)

    wait_for(all_closed, timeout=60, what="the 500 accepted tasks closed by the next start")
    assert restarted.task(task_ids[0])["status"] == "failed"


def test_sigterm_to_the_embedded_server_gives_running_tasks_the_grace_then_stops_them(
    embedded: Stack,
) -> None:
    """The embedded queue lives in the server's memory: there is nothing to hand back to,
    so what outlives the grace is stopped and logged, never left `running`."""
    embedded.env["TASKLENS_SHUTDOWN_GRACE_SECONDS"] = "3"
    api = embedded.start_api()
    short = api.enqueue("demo.slow", count=3, steps=2, step_seconds=0.5)  # 1 s each
    long = api.enqueue("demo.slow", count=2, steps=60, step_seconds=0.5)  # 30 s each
    for task_id in short + long:
        api.wait_task(task_id, "running", timeout=20)

    stopping = time.monotonic()
    api.process.stop(signal.SIGTERM, timeout=40)
    took = time.monotonic() - stopping
    # uvicorn re-raises the SIGTERM it handled once shut down: a clean stop ends as -15.
    assert api.process.popen.returncode in (0, -signal.SIGTERM), api.process.log()
    assert took < 3 + 10  # the grace, plus stopping the tasks and the final flush
    assert "waiting up to 3s for 5 running tasks" in api.process.log()

    restarted = embedded.start_api("api-restarted")
    for task_id in short:
        assert restarted.task(task_id)["status"] == "success"
    for task_id in long:
        [attempt] = restarted.task(task_id)["attempts"]
        assert (attempt["status"], attempt["error_message"]) == ("failed", STOPPED_ERROR)
        assert 3000 <= attempt["duration_ms"] < 13_000


def test_queued_rows_of_a_gone_embedded_server_are_closed_and_no_one_elses(
    tmp_path: Path,
) -> None:
    """An in-memory broker's `pending` rows name the process whose memory holds the queue:
    the next embedded server closes those of a predecessor, and leaves rows of writers it
    does not know about (a TaskIQ app sharing the file, rows without a worker) alone. A
    stopping server closes its own queue the same way."""
    url = f"sqlite+aiosqlite:///{tmp_path}/tasklens.db"
    migrate.upgrade(url)
    now = datetime.now(UTC)

    def queued(task_id: str, worker: str | None) -> LifecycleChange:
        return LifecycleChange(
            task_id=task_id,
            task_name="demo.slow",
            status=TaskStatus.PENDING,
            timestamp=as_time(now),
            created_at=as_time(now),
            worker=worker,
        )

    async def scenario() -> dict[str, dict[str, Any]]:
        recorder = build_recorder(url, None)
        await recorder.store.upsert(
            [
                queued("predecessors", "host:1"),
                queued("mine", this_worker()),
                queued("someone-elses", None),
            ]
        )
        await recorder.store.close()
        engine = create_engine(url)
        reaper = Reaper(engine, max_task_seconds=600, redis_url=None)
        try:
            assert await reaper.reap() == 1
            assert await reaper.close_own_queue() == 1
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text(
                        "SELECT task_id, status, error_message FROM "
                        + own_name("task_execution_logs", engine.dialect)
                    )
                )
                return {row.task_id: dict(row._mapping) for row in rows}
        finally:
            await reaper.stop()
            await engine.dispose()

    rows = asyncio.run(scenario())
    for task_id in ("predecessors", "mine"):
        assert (rows[task_id]["status"], rows[task_id]["error_message"]) == (
            "failed",
            NEVER_RAN_ERROR,
        )
    assert rows["someone-elses"]["status"] == "pending"


def wait_running(database_url: str, count: int) -> None:
    def running() -> bool:
        return sum(1 for r in log_rows(database_url) if r["status"] == "running") == count

    wait_for(running, timeout=20, what=f"{count} tasks running")


def test_sigterm_lets_running_tasks_finish_within_the_grace(distributed: Stack) -> None:
    database_url = distributed.env["TASKLENS_DATABASE_URL"]
    api = distributed.start_api()
    worker = distributed.start_worker(extra_args=["--grace", "20"])
    task_ids = set(api.enqueue("demo.slow", count=20, steps=6, step_seconds=0.5))  # 3 s each
    wait_running(database_url, 20)

    stopping = time.monotonic()
    worker.stop(signal.SIGTERM, timeout=40)
    took = time.monotonic() - stopping
    assert worker.popen.returncode is not None
    assert took < 20 + 10  # the grace, plus the final flush of the log (bounded by 10 s)
    rows = log_rows(database_url)
    assert {r["task_id"] for r in rows} == task_ids
    assert {(r["attempt"], r["status"]) for r in rows} == {(1, "success")}
    assert "Waiting for 20 running tasks" in worker.log()


def test_sigterm_hands_back_the_tasks_still_running_after_the_grace(distributed: Stack) -> None:
    """With a 60 s task timeout the idle-timeout redelivery would take 100 s: the tasks are
    finished by the next worker long before, because the stopping worker handed them back."""
    distributed.env |= {"TASKLENS_TASK_TIMEOUT_SECONDS": "60", "TASKLENS_WORKER_CONCURRENCY": "10"}
    database_url = distributed.env["TASKLENS_DATABASE_URL"]
    api = distributed.start_api()
    worker_a = distributed.start_worker("worker-a", extra_args=["--grace", "1"])
    task_ids = set(api.enqueue("demo.slow", count=20, steps=6, step_seconds=0.5))  # 3 s each
    wait_running(database_url, 10)
    [lost_worker] = {r["worker"] for r in log_rows(database_url) if r["worker"]}

    stopping = time.monotonic()
    worker_a.stop(signal.SIGTERM, timeout=30)
    assert time.monotonic() - stopping < 1 + 10
    assert "handed back" in worker_a.log()
    worker_b = distributed.start_worker("worker-b")

    def all_finished() -> bool:
        tasks = attempts_by_task(log_rows(database_url))
        return len(tasks) == 20 and all(a[-1]["status"] == "success" for a in tasks.values())

    wait_for(all_finished, timeout=60, what="every task to finish on worker-b", interval=0.5)
    assert time.monotonic() - stopping < 60
    tasks = attempts_by_task(log_rows(database_url))
    assert set(tasks) == task_ids
    handed_back = {t: a for t, a in tasks.items() if len(a) == 2}
    assert len(handed_back) == 10  # the ten that were running; the ten queued ran once
    for first, second in handed_back.values():
        assert (first["status"], first["error_message"], first["worker"]) == (
            "failed",
            HANDED_BACK_ERROR,
            lost_worker,
        )
        assert (second["attempt"], second["status"]) == (2, "success")
    for attempts in tasks.values():
        assert attempts[-1]["worker"] != lost_worker
    assert worker_b.popen.poll() is None
