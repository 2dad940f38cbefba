"""Faults no other test covers alone, and faults in combination: an API process killed right
after its 202s, a worker killed while Redis is down, an API killed while PostgreSQL is down.
Real `tasklens serve` / `tasklens worker` processes, real PostgreSQL and Redis (private
servers for the ones stopped). What a user must see: no accepted task missing, none left
`pending` or `running`, none run twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from git_repo import make_repository
from private_services import PrivatePostgres, PrivateRedis
from support import API_TOKENS, Api, LiveEvents, Stack, fetch_log_rows, wait_for

from tasklens.reaper import LOST_ERROR

# The killed API batches its log writes widely: what it recorded for the tasks it accepted
# (their `pending` rows, with the params) is still in its memory when it dies.
WIDE_BATCHES = {
    "TASKLENS_EVENT_FLUSH_INTERVAL_MS": "10000",
    "TASKLENS_LOG_WRITE_INTERVAL_MS": "60000",
    "TASKLENS_LOG_BATCH_SIZE": "100000",
}


async def fetch_attempts(database_url: str) -> dict[str, list[dict[str, Any]]]:
    """task id -> its rows, by attempt; {} while the database is down."""
    try:
        rows = await fetch_log_rows(
            database_url, "task_id, attempt, status, params, worker, error_message", timeout=3
        )
    except (OSError, asyncpg.PostgresError):
        return {}
    tasks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        tasks[row["task_id"]].append(dict(row))
    return dict(tasks)


def attempts_by_task(database_url: str) -> dict[str, list[dict[str, Any]]]:
    return asyncio.run(fetch_attempts(database_url))


def all_finished(tasks: dict[str, list[dict[str, Any]]], task_ids: set[str]) -> bool:
    return set(tasks) >= task_ids and all(
        tasks[t][-1]["status"] in ("success", "failed") for t in task_ids
    )


def wait_all_finished(database_url: str, task_ids: set[str], timeout: float) -> None:
    wait_for(
        lambda: all_finished(attempts_by_task(database_url), task_ids),
        timeout=timeout,
        what="every accepted task to finish",
        interval=0.5,
    )


async def async_wait_all_finished(database_url: str, task_ids: set[str], timeout: float) -> None:
    """As wait_all_finished, leaving the event loop to the WebSocket clients meanwhile."""
    deadline = time.monotonic() + timeout
    while not all_finished(await fetch_attempts(database_url), task_ids):
        assert time.monotonic() < deadline, f"not every accepted task finished in {timeout}s"
        await asyncio.sleep(0.5)


def assert_each_ran_once(
    tasks: dict[str, list[dict[str, Any]]], task_ids: set[str]
) -> dict[str, dict[str, Any]]:
    """Every accepted task has exactly one row, `success`, and nothing else is in the log."""
    assert set(tasks) == task_ids
    assert {t: len(rows) for t, rows in tasks.items() if len(rows) != 1} == {}
    outcomes = {(rows[0]["attempt"], rows[0]["status"]) for rows in tasks.values()}
    assert outcomes == {(1, "success")}
    return {t: rows[0] for t, rows in tasks.items()}


def post_analyses(api: Api, repositories: list[Path]) -> set[str]:
    """One analysis per repository and period, as a burst of dashboard clicks."""
    task_ids = set()
    with api.client() as client:
        for repository in repositories:
            for period in ("1_month", "1_year", "all"):
                response = client.post(
                    "/api/v1/analyses",
                    json={
                        "kind": "repository",
                        "subject": str(repository),
                        "params": {"period": period},
                    },
                )
                assert response.status_code == 202, response.text
                assert response.json()["deduplicated"] is False
                task_ids.add(response.json()["task_id"])
    return task_ids


async def test_what_a_killed_api_accepted_runs_once_and_other_apis_show_it(
    distributed: Stack, tmp_path: Path
) -> None:
    repos = tmp_path / "repos"
    repositories = [make_repository(repos / f"project-{i}") for i in range(2)]
    distributed.env |= {"TASKLENS_REPO_ROOTS": str(repos), "TASKLENS_WORKER_CONCURRENCY": "300"}
    database_url = distributed.env["TASKLENS_DATABASE_URL"]
    distributed.start_worker()
    survivor = distributed.start_api("api-b")
    distributed.env |= WIDE_BATCHES
    doomed = distributed.start_api("api-a")

    async with LiveEvents(survivor.ws_url()) as live:
        demo = set(doomed.enqueue("demo.quick", count=200, n=7))
        analyses = post_analyses(doomed, repositories)
        doomed.process.kill_hard()  # right after the last 202
        accepted = demo | analyses
        assert len(accepted) == 206

        await async_wait_all_finished(database_url, accepted, timeout=60)
        for task_id in accepted:  # the survivor's WebSocket saw each finish
            await live.wait_status(task_id, "success", timeout=30)
        assert not live.closed

    await asyncio.sleep(6)  # a reaper pass and more: nothing changes after the tasks are done
    rows = assert_each_ran_once(await fetch_attempts(database_url), accepted)
    assert survivor.task(next(iter(demo)))["status"] == "success"
    # The survivor answers an analysis the dead API accepted: it is done, not re-run.
    with survivor.client() as client:
        again = client.post(
            "/api/v1/analyses",
            json={
                "kind": "repository",
                "subject": str(repositories[0]),
                "params": {"period": "all"},
            },
        )
    assert again.status_code == 200, again.text
    assert again.json()["task_id"] in analyses and again.json()["cached"] is True
    assert {rows[t]["worker"] is not None for t in accepted} == {True}


def test_the_params_of_what_a_killed_api_accepted_are_in_the_log(distributed: Stack) -> None:
    database_url = distributed.env["TASKLENS_DATABASE_URL"]
    distributed.start_worker()
    distributed.env |= WIDE_BATCHES
    doomed = distributed.start_api("api-a")
    accepted = set(doomed.enqueue("demo.quick", count=20, n=7))
    doomed.process.kill_hard()

    wait_all_finished(database_url, accepted, timeout=60)
    rows = assert_each_ran_once(attempts_by_task(database_url), accepted)
    assert [t for t, row in rows.items() if row["params"] is None] == []


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path, persistent=True).start()
    yield server
    server.stop()


def test_a_worker_killed_while_redis_is_down_has_its_tasks_run_again_once_redis_is_back(
    tmp_path: Path, persistent_redis: PrivateRedis, postgres_url: str
) -> None:
    """Redis with its append-only file: the stream, the delivered-but-unacknowledged messages
    and the dead worker's last heartbeat survive the crash. The lost attempt is closed, the
    message redelivered to the next worker, which finishes each task once."""
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": postgres_url,
            "TASKLENS_REDIS_URL": persistent_redis.url,
            "TASKLENS_API_TOKENS": API_TOKENS,
            "TASKLENS_TASK_TIMEOUT_SECONDS": "5",  # redelivery after 5 + 2.5 + 10 s idle
        },
    )
    try:
        api = stack.start_api()
        doomed = stack.start_worker("worker-a")
        accepted = set(api.enqueue("demo.slow", count=20, steps=8, step_seconds=0.5))  # 4 s

        def all_running() -> bool:
            tasks = attempts_by_task(postgres_url)
            return len(tasks) == 20 and all(t[-1]["status"] == "running" for t in tasks.values())

        wait_for(all_running, timeout=30, what="20 tasks running on worker-a")
        persistent_redis.stop()
        doomed.kill_hard()
        persistent_redis.start()
        stack.start_worker("worker-b")

        def lost_attempts_closed() -> bool:
            tasks = attempts_by_task(postgres_url).values()
            return all(t[0]["status"] != "running" for t in tasks)

        # The reaper closes them, whichever of its rules gets there first (too old: 5 + 2.5 +
        # 10 s after their start; superseded by attempt 2, once that row exists): at most a
        # pass (5 s ± 20 %) later, and it need not be before the redelivered attempts end.
        wait_for(lost_attempts_closed, timeout=17.5 + 6 + 10, what="the lost attempts closed")
        wait_for(
            lambda: all(
                t[-1]["status"] == "success" for t in attempts_by_task(postgres_url).values()
            ),
            timeout=75,
            what="every task to finish on worker-b",
            interval=0.5,
        )
        tasks = attempts_by_task(postgres_url)
        assert set(tasks) == accepted
        for attempts in tasks.values():
            lost, redone = attempts  # exactly two: the lost attempt and the redelivered one
            assert (lost["attempt"], lost["status"], lost["error_message"]) == (
                1,
                "failed",
                LOST_ERROR,
            )
            assert (redone["attempt"], redone["status"]) == (2, "success")
            assert redone["worker"] != lost["worker"]
    finally:
        stack.stop_all()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    server.ctl("start")
    yield server
    server.destroy()


def test_an_api_killed_while_postgres_is_down_loses_none_of_what_it_accepted(
    tmp_path: Path, private_postgres: PrivatePostgres, redis_url: str
) -> None:
    """The API's `pending` rows wait in its memory for the database, and die with it; the
    messages are in Redis, so the worker runs every task and logs it once PostgreSQL is back."""
    database_url = private_postgres.url
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": database_url,
            "TASKLENS_REDIS_URL": redis_url,
            "TASKLENS_API_TOKENS": API_TOKENS,
        },
    )
    try:
        assert stack._spawn("migrate", ["migrate"], {}).popen.wait(60) == 0
        api = stack.start_api()
        stack.start_worker()
        before = set(api.enqueue("demo.slow", count=50, steps=4, step_seconds=0.5))  # 2 s
        private_postgres.ctl("stop")  # immediate: connections cut, as in a crash
        during = set(api.enqueue("demo.slow", count=50, steps=4, step_seconds=0.5))
        api.process.kill_hard()
        time.sleep(3)  # tasks run on; their rows wait in the worker's buffer
        private_postgres.ctl("start")

        accepted = before | during
        wait_all_finished(database_url, accepted, timeout=60)
        time.sleep(6)  # a reaper pass and more: nothing changes after the tasks are done
        assert_each_ran_once(attempts_by_task(database_url), accepted)
    finally:
        stack.stop_all()


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def kill_worker_while_redis_crashes(
    tmp_path: Path, redis: PrivateRedis, database_url: str, running: int, queued: int
) -> Stack:
    """`running` tasks on a worker that is SIGKILLed while Redis is down, `queued` behind
    them; Redis comes back empty (no AOF) and another worker starts. Returns the stack."""
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": database_url,
            "TASKLENS_REDIS_URL": redis.url,
            "TASKLENS_API_TOKENS": API_TOKENS,
            "TASKLENS_TASK_TIMEOUT_SECONDS": "5",  # rows older than 5 + 2.5 + 10 s are lost
            "TASKLENS_WORKER_CONCURRENCY": str(running),
        },
    )
    api = stack.start_api()
    doomed = stack.start_worker("worker-a")
    api.enqueue("demo.slow", count=running + queued, steps=8, step_seconds=0.5)  # 4 s

    def started() -> bool:
        tasks = attempts_by_task(database_url)
        return sum(1 for t in tasks.values() if t[-1]["status"] == "running") == running

    wait_for(started, timeout=30, what=f"{running} tasks running on worker-a")
    redis.stop()
    doomed.kill_hard()
    redis.start()  # same port, every key gone: the stream, the heartbeats
    stack.start_worker("worker-b")
    return stack


def test_a_worker_killed_while_a_redis_without_aof_crashes_leaves_no_task_running(
    tmp_path: Path, volatile_redis: PrivateRedis, postgres_url: str
) -> None:
    """The messages died with Redis, so nothing is run again; the dead worker's heartbeat
    died too, so its rows are closed by their age: `failed`, "worker lost", each once."""
    stack = kill_worker_while_redis_crashes(tmp_path, volatile_redis, postgres_url, 10, 0)
    try:
        wait_all_finished(postgres_url, set(attempts_by_task(postgres_url)), timeout=60)
        tasks = attempts_by_task(postgres_url)
        assert len(tasks) == 10
        for attempts in tasks.values():
            [lost] = attempts
            assert (lost["status"], lost["error_message"]) == ("failed", LOST_ERROR)
    finally:
        stack.stop_all()


def test_tasks_queued_when_a_redis_without_aof_crashes_are_not_left_pending(
    tmp_path: Path, volatile_redis: PrivateRedis, postgres_url: str
) -> None:
    """Their messages died with Redis: no worker will ever start them, so their `pending`
    rows must be closed too (the lost-message rule), not left waiting forever."""
    stack = kill_worker_while_redis_crashes(tmp_path, volatile_redis, postgres_url, 5, 5)
    try:
        with contextlib.suppress(AssertionError):  # the count below says what is left
            # The lost-message bound: timeout + 60 s after the rows' last write.
            wait_all_finished(postgres_url, set(attempts_by_task(postgres_url)), timeout=90)
        last = [t[-1]["status"] for t in attempts_by_task(postgres_url).values()]
        assert (len(last), last.count("pending"), last.count("running")) == (10, 0, 0)
    finally:
        stack.stop_all()
