"""Outages of the services TaskLens needs: Redis and PostgreSQL restarted under a running
deployment. Private servers (tests/private_services.py), real API and worker processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from git_repo import make_repository
from private_services import PrivatePostgres, PrivateRedis
from support import (
    API_TOKENS,
    OPERATOR_TOKEN,
    VIEWER_TOKEN,
    LiveEvents,
    Stack,
    query,
    wait_for,
)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


async def test_redis_restarted_api_and_worker_carry_on_without_a_restart(
    tmp_path: Path, private_redis: PrivateRedis, postgres_url: str
) -> None:
    repos = tmp_path / "repos"
    repo = make_repository(repos / "project")
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": postgres_url,
            "TASKLENS_REDIS_URL": private_redis.url,
            "TASKLENS_API_TOKENS": API_TOKENS,
            "TASKLENS_REPO_ROOTS": str(repos),
        },
    )
    try:
        api = stack.start_api()
        worker = stack.start_worker()
        analysis = {"kind": "repository", "subject": str(repo), "params": {"period": "1_year"}}
        async with LiveEvents(api.ws_url()) as live:
            [before] = api.enqueue("demo.quick", n=1)
            await live.wait_status(before, "success")

            private_redis.stop()
            with api.client() as client:
                refused = client.post("/api/v1/analyses", json=analysis)
                health = client.get("/health")
            assert refused.status_code == 503, refused.text
            assert "Redis" in refused.json()["error"]
            assert health.status_code == 503 and health.json()["redis"] != "ok"

            private_redis.start()  # same port, every key gone (no persistence)
            api.wait_healthy()
            with api.client() as client:
                accepted = client.post("/api/v1/analyses", json=analysis)
            # Not blocked by a dedup claim of the refused request, not deduplicated into
            # anything half-enqueued: a fresh task that a worker runs.
            assert accepted.status_code == 202, accepted.text
            assert accepted.json()["deduplicated"] is False
            task_id = accepted.json()["task_id"]
            # The same WebSocket, still open: the API resubscribed to the events by itself.
            await live.wait_status(task_id, "success", timeout=60)
            [after] = api.enqueue("demo.quick", n=2)
            await live.wait_status(after, "success", timeout=30)
        assert worker.popen.poll() is None and api.process.popen.poll() is None
        assert "consumer group gone" in worker.log() or "lost Redis" in worker.log()
        with api.client() as client:
            history = client.get("/api/v1/monitoring/history", params={"page_size": 100}).json()
        logged = [row for row in history["items"] if not row["task_name"].startswith("demo.")]
        assert [row["task_id"] for row in logged] == [task_id]  # no row of the refused one
    finally:
        stack.stop_all()


def _count_rows(database_url: str) -> tuple[int, int, int]:
    """(rows, distinct task ids, successful rows), or (-1, -1, -1) while it is down."""

    sql = (
        "SELECT count(*) AS rows, count(DISTINCT task_id) AS tasks, "
        "count(*) FILTER (WHERE status = 'success') AS succeeded FROM task_execution_logs"
    )
    try:
        [row] = asyncio.run(query(database_url, sql, timeout=3))
        return int(row["rows"]), int(row["tasks"]), int(row["succeeded"])
    except (OSError, asyncpg.PostgresError):
        return -1, -1, -1


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    server.ctl("start")
    yield server
    server.destroy()


def test_postgres_restarted_during_10000_tasks_loses_no_row_and_duplicates_none(
    tmp_path: Path, private_postgres: PrivatePostgres, redis_url: str
) -> None:
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
        with api.client() as client:
            # demo.quick sleeps a little: noop tasks could all be done before the outage.
            response = client.post("/api/v1/demo", json={"task": "demo.quick", "count": 10_000})
        assert response.status_code == 202, response.text

        wait_for(
            lambda: _count_rows(database_url)[2] >= 1_000,
            timeout=60,
            what="the first 1,000 tasks to be logged",
            interval=0.5,
        )
        private_postgres.ctl("stop")  # immediate: connections cut, as in a crash
        time.sleep(3)  # tasks go on running; their rows wait in the recorders' buffers
        private_postgres.ctl("start")

        wait_for(
            lambda: _count_rows(database_url)[2] == 10_000,
            timeout=120,
            what="all 10,000 tasks to be logged as successful",
            interval=1,
        )
        rows, task_ids, successful = _count_rows(database_url)
        assert (rows, task_ids, successful) == (10_000, 10_000, 10_000)
        assert "log write failed" in stack.processes[-1].log()  # the worker did see the outage
    finally:
        stack.stop_all()


@pytest.mark.parametrize("outage", ["killed", "hung"])
async def test_redis_down_cached_reads_answer_from_postgres_and_only_new_work_is_refused(
    tmp_path: Path, private_redis: PrivateRedis, postgres_url: str, outage: str
) -> None:
    """Killed: connections refused. Hung (SIGSTOP): connections accepted, never answered;
    every Redis call gives up after its socket timeout."""
    repos = tmp_path / "repos"
    repo = make_repository(repos / "project")
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": postgres_url,
            "TASKLENS_REDIS_URL": private_redis.url,
            "TASKLENS_API_TOKENS": API_TOKENS,
            "TASKLENS_REPO_ROOTS": str(repos),
        },
    )
    cached = {"kind": "repository", "subject": str(repo), "params": {"period": "all"}}
    uncached = {**cached, "params": {"period": "1_year"}}
    path = f"/api/v1/analyses/repository/{quote(str(repo), safe='')}"
    try:
        api = stack.start_api()
        stack.start_worker()
        accepted: list[httpx.Response] = []

        def submitted() -> bool:  # a loaded machine may time out a first connection
            with api.client() as client:
                accepted.append(client.post("/api/v1/analyses", json=cached))
            return accepted[-1].status_code == 202

        wait_for(submitted, timeout=60, what="the analysis to be accepted", interval=1)
        task_id = accepted[-1].json()["task_id"]
        api.wait_task(task_id, "success", timeout=60)
        wait_for(lambda: api.client().get(path).status_code == 200, timeout=10, what="the result")

        if outage == "killed":
            private_redis.stop()
        else:
            private_redis.pause()
        for token in (OPERATOR_TOKEN, VIEWER_TOKEN):
            with api.client(token) as client:
                started = time.monotonic()
                served = client.get(path)
                assert time.monotonic() - started < 15  # bounded Redis timeouts: no hang
            assert served.status_code == 200, served.text
            body = served.json()
            assert body["live_unavailable"] is True
            assert (body["task_id"], body["is_stale"]) == (task_id, False)
            assert body["result"]["commit_count"] == 6
        with api.client() as client:
            reads = [
                client.get("/api/v1/monitoring/metrics"),
                client.get("/api/v1/monitoring/history"),
                client.get(f"/api/v1/tasks/{task_id}"),
                client.get("/api/v1/analyses"),
                client.post("/api/v1/analyses", json=cached),  # the fresh result: no queue
            ]
            assert [r.status_code for r in reads] == [200] * 5, [r.text for r in reads]
            assert reads[-1].json()["cached"] is True
            new_work = [
                client.post("/api/v1/analyses", json=uncached),
                client.get(path, params={"period": "1_year"}),  # would generate it
                client.post("/api/v1/demo", json={"task": "demo.quick", "count": 1}),
            ]
        for refused in new_work:
            assert refused.status_code == 503, refused.text
            assert "Redis" in refused.json()["error"]
        assert "Traceback" not in api.process.log()
    finally:
        private_redis.resume()
        stack.stop_all()
