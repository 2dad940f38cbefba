"""`tasklens worker` stopped with SIGTERM exits promptly even while its PostgreSQL does not
answer, and loses no task to the stop.

The throughput bench saw a stopped worker wait out taskiq's whole `--shutdown-timeout` (30 s)
about once in 70 stops. Every await of its stop path is now bounded; the one that waited it
out here was asyncpg's close of the recorder's connection, which waits for the server's
goodbye with no bound of its own (and, after a write cut off by the stop, for its cancel)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from private_services import PrivatePostgres
from support import Process, fetch_log_rows, outage_stack, wait_for

# The stop of a worker whose tasks are done: taskiq's process manager looks for the signal
# once a second, the recorder's connection gets 2 s to close, the rest answers at once.
STOP_BOUND_SECONDS = 10.0


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    server.ctl("start")
    yield server
    server.resume()  # a failed test may leave it paused
    server.destroy()


def log_rows(database_url: str) -> list[dict[str, Any]]:
    """Every row, or [] while the database does not answer."""
    try:
        return asyncio.run(fetch_log_rows(database_url, "task_id, attempt, status", timeout=3))
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return []


def successes(database_url: str) -> Counter[str]:
    return Counter(r["task_id"] for r in log_rows(database_url) if r["status"] == "success")


def wait_succeeded(database_url: str, task_ids: set[str]) -> None:
    wait_for(
        lambda: set(successes(database_url)) == task_ids,
        timeout=30,
        what="every task to succeed",
    )


def sigterm(worker: Process) -> float:
    """Seconds from SIGTERM until the worker's process (and so its children) exited."""
    started = time.monotonic()
    worker.stop(signal.SIGTERM, timeout=60)
    return time.monotonic() - started


def test_sigterm_stops_an_idle_worker_promptly_while_postgres_does_not_answer(
    tmp_path: Path, private_postgres: PrivatePostgres, redis_url: str
) -> None:
    """The bench's moment: the worker has just finished its tasks (every row written, every
    message acknowledged) when the signal comes, here with the database hung."""
    database_url = private_postgres.url
    stack = outage_stack(tmp_path, database_url, redis_url)
    try:
        api = stack.start_api()
        task_ids: set[str] = set()
        stops = []
        for round_ in range(3):
            worker = stack.start_worker(f"worker-{round_}")
            task_ids |= set(api.enqueue("demo.quick", count=50))
            wait_succeeded(database_url, task_ids)
            private_postgres.pause()
            try:
                stops.append(sigterm(worker))
            finally:
                private_postgres.resume()
            assert worker.popen.returncode == 0, worker.log()
        assert max(stops) < STOP_BOUND_SECONDS, stops

        # Nothing was lost or run twice: a worker started afterwards finds nothing to do.
        stack.start_worker("worker-after")
        time.sleep(2)
        assert successes(database_url) == Counter(dict.fromkeys(task_ids, 1))
    finally:
        private_postgres.resume()
        stack.stop_all()


def test_sigterm_mid_run_while_postgres_does_not_answer_loses_no_task(
    tmp_path: Path, private_postgres: PrivatePostgres, redis_url: str
) -> None:
    """Tasks run when the database hangs and the signal comes: the worker exits within its
    grace plus the recorder's last flush (10 s). The tasks whose final rows it could not
    write are the messages it did not acknowledge, so the next worker runs them again, and
    each task ends `success` exactly once."""
    database_url = private_postgres.url
    stack = outage_stack(
        tmp_path,
        database_url,
        redis_url,
        # Unacknowledged messages are delivered again after 2 + 1 + 10 s idle.
        TASKLENS_TASK_TIMEOUT_SECONDS="2",
        TASKLENS_WORKER_CONCURRENCY="10",
    )
    try:
        api = stack.start_api()
        worker = stack.start_worker("worker-a", extra_args=["--grace", "2"])
        task_ids = set(api.enqueue("demo.slow", count=30, steps=2, step_seconds=0.3))
        wait_for(
            lambda: any(r["status"] == "running" for r in log_rows(database_url)),
            timeout=30,
            what="tasks to run",
        )
        private_postgres.pause()
        try:
            took = sigterm(worker)
        finally:
            private_postgres.resume()
        assert worker.popen.returncode == 0, worker.log()
        assert took < 2 + 10 + STOP_BOUND_SECONDS, took

        stack.start_worker("worker-b")
        wait_succeeded(database_url, task_ids)
        assert successes(database_url) == Counter(dict.fromkeys(task_ids, 1))
    finally:
        private_postgres.resume()
        stack.stop_all()
