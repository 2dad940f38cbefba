"""Distributed mode: API and worker processes that share only PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from pathlib import Path

import httpx
from conftest import _recreate_database, pg_url
from support import Api, LiveEvents, Stack, seen_live, wait_for

from tasklens.migrate import head_revision

PG_VERSION = (
    sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    if Path("/etc/postgresql").is_dir()
    else "15"
)


def pg_ctl(action: str) -> None:
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            PG_VERSION,
            "main",
            action,
            *(["-m", "fast"] if action == "stop" else []),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


async def test_events_reach_the_websocket_of_another_api_process(distributed: Stack) -> None:
    api_a = distributed.start_api("api-a")
    api_b = distributed.start_api("api-b")
    distributed.start_worker()

    async with LiveEvents(api_b.ws_url()) as live_b:
        [ok] = api_a.enqueue("demo.quick", n=3)
        [bad] = api_a.enqueue("demo.flaky", failure_rate=1.0)
        await live_b.wait_status(ok, "success")
        await live_b.wait_status(bad, "failed")

    assert set(live_b.statuses(ok)) in [set(s) for s in seen_live("pending", "running", "success")]
    assert set(live_b.statuses(bad)) in [set(s) for s in seen_live("pending", "running", "failed")]
    assert api_b.task(ok)["status"] == "success"


def test_tasks_run_while_postgres_is_down_and_their_rows_appear_after(
    distributed: Stack,
) -> None:
    api = distributed.start_api()
    distributed.start_worker()
    task_ids = api.enqueue("demo.slow", count=20, steps=4, step_seconds=0.5)
    wait_for(
        lambda: api.task(task_ids[0]).get("status") == "running",
        timeout=20,
        what="the first task to start",
    )
    pg_ctl("stop")
    try:
        assert httpx.get(api.base_url + "/health").status_code == 503
        with api.client() as client:
            during = client.get(f"/api/v1/tasks/{task_ids[0]}")
        assert during.status_code == 503
        assert "unavailable" in during.json()["error"]
        more = api.enqueue("demo.quick", count=10, n=1)  # accepted: Redis is up
        time.sleep(4)  # the slow tasks finish while the database is still down
    finally:
        pg_ctl("start")
    api.wait_healthy()
    for task_id in task_ids + more:
        api.wait_task(task_id, "success", timeout=60)
    with api.client() as client:
        history = client.get("/api/v1/monitoring/history", params={"page_size": 200}).json()
    assert history["total_count"] == 30  # one row per task: no duplicates, nothing lost
    assert "log write failed" in distributed.processes[1].log()  # the worker noticed


def test_a_worker_needs_redis(tmp_path: Path) -> None:
    stack = Stack(tmp_path, {"TASKLENS_REDIS_URL": ""})
    process = stack._spawn("worker", ["worker"], {})
    assert process.popen.wait(30) == 2
    assert "TASKLENS_REDIS_URL" in process.log()


def test_health_names_each_part_it_needs(distributed: Stack) -> None:
    api: Api = distributed.start_api()
    with api.client() as client:
        assert client.get("/health").json() == {
            "status": "ok",
            "mode": "distributed",
            "database": "ok",
            "redis": "ok",
        }


def test_an_api_refuses_a_database_that_is_not_migrated(tmp_path: Path, redis_url: str) -> None:
    asyncio.run(_recreate_database("tasklens_unmigrated"))
    stack = Stack(
        tmp_path,
        {"TASKLENS_DATABASE_URL": pg_url("tasklens_unmigrated"), "TASKLENS_REDIS_URL": redis_url},
    )
    process = stack._spawn("api", ["serve"], {})
    assert process.popen.wait(30) == 2
    assert process.log().strip().splitlines()[-1] == (
        f"tasklens: the database is at migration none, this TaskLens needs {head_revision()}: "
        "run `tasklens migrate`"
    )


def test_a_task_on_a_killed_worker_is_redelivered_and_finished(distributed: Stack) -> None:
    """RedisStreamBroker keeps an unacknowledged message pending; once it has been idle longer
    than any task may run (TASK_TIMEOUT_SECONDS + 10 s), another worker claims and runs it."""
    distributed.env["TASKLENS_TASK_TIMEOUT_SECONDS"] = "3"
    api = distributed.start_api()
    doomed = distributed.start_worker("worker-a")
    [task_id] = api.enqueue("demo.slow", steps=4, step_seconds=0.5)
    running = api.wait_task(task_id, "running", timeout=20)
    doomed.kill_hard()
    first_worker = running["attempts"][0]["worker"]

    distributed.start_worker("worker-b")
    done = api.wait_task(task_id, "success", timeout=40)
    lost, redelivered = done["attempts"]  # a redelivery is a new attempt: both are logged
    assert lost["worker"] == first_worker
    assert redelivered["attempt"] == 2 and redelivered["worker"] != first_worker
    assert done["result"] == {"steps": 4}


def test_a_cancelled_pending_task_never_starts(distributed: Stack) -> None:
    api = distributed.start_api()
    [task_id] = api.enqueue("demo.slow", steps=2, step_seconds=0.1)  # no worker yet
    api.wait_task(task_id, "pending", timeout=5)  # its row is written within ~100 ms
    with api.client() as client:
        response = client.post(f"/api/v1/tasks/{task_id}/cancel")
    assert response.json() == {"task_id": task_id, "status": "cancelled"}
    assert api.wait_task(task_id, "cancelled", timeout=5)["started_at"] is None

    worker = distributed.start_worker()  # starts after the cancel: learns it from Redis
    [marker] = api.enqueue("demo.quick", n=1)
    api.wait_task(marker, "success")  # the queue was drained past the cancelled task
    task = api.task(task_id)
    assert task["status"] == "cancelled"
    assert task["started_at"] is None and task["progress"] is None  # its body never ran
    assert task["attempts"][0]["worker"] is not None  # a worker took it, and dropped it
    assert "Executing task demo.slow" in worker.log()


def test_a_high_priority_task_jumps_a_low_priority_backlog(distributed: Stack) -> None:
    distributed.env["TASKLENS_WORKER_CONCURRENCY"] = "1"  # one at a time: order is visible
    api = distributed.start_api()
    with api.client() as client:
        low = client.post(
            "/api/v1/demo",
            json={"task": "demo.quick", "count": 30, "priority": "low", "params": {"n": 1}},
        )
        high = client.post(
            "/api/v1/demo",
            json={"task": "demo.quick", "count": 1, "priority": "high", "params": {"n": 2}},
        )
    low_ids, [high_id] = low.json()["task_ids"], high.json()["task_ids"]
    distributed.start_worker()
    for task_id in low_ids:
        api.wait_task(task_id, "success", timeout=60)
    high_task = api.wait_task(high_id, "success")
    started_before_high = [
        task_id for task_id in low_ids if api.task(task_id)["started_at"] < high_task["started_at"]
    ]
    assert len(started_before_high) <= 10  # at most one small read of low ones
    assert high_task["queue"] == "tasklens:high"
    assert api.task(low_ids[0])["queue"] == "tasklens:low"


def test_queues_show_depth_per_priority_and_worker_heartbeats(distributed: Stack) -> None:
    api = distributed.start_api()
    with api.client() as client:
        client.post("/api/v1/demo", json={"task": "demo.quick", "count": 3, "priority": "low"})
        client.post("/api/v1/demo", json={"task": "demo.quick", "count": 2, "priority": "high"})
        waiting = client.get("/api/v1/queues").json()
        assert {q["name"]: q["depth"] for q in waiting["queues"]} == {
            "high": 2,
            "default": 0,
            "low": 3,
        }
        assert waiting["workers"] == []
        assert client.get("/health/queue").status_code == 503  # nobody to run them

        worker = distributed.start_worker()
        wait_for(
            lambda: (
                sum(
                    q["depth"] + q["in_flight"]
                    for q in client.get("/api/v1/queues").json()["queues"]
                )
                == 0
            ),
            timeout=30,
            what="the queues to drain",
        )
        wait_for(
            lambda: bool(client.get("/api/v1/queues").json()["workers"]),
            timeout=10,
            what="a heartbeat",
        )
        [seen] = client.get("/api/v1/queues").json()["workers"]
        assert seen["online"] is True and seen["id"] == f"{seen['hostname']}:{seen['pid']}"
        health = client.get("/health/queue")
        assert health.status_code == 200 and health.json()["workers_online"] == 1

        # A clean exit takes the worker off the list. taskiq's main process exits without
        # waiting for its worker process, so give that one a moment to finish its shutdown.
        worker.stop()
        wait_for(
            lambda: client.get("/api/v1/queues").json()["workers"] == [],
            timeout=10,
            what="the stopped worker to leave the list",
        )
    assert httpx.get(api.base_url + "/health/queue").status_code == 401


def test_the_embedded_server_runs_at_most_worker_concurrency_tasks_at_once(
    embedded: Stack,
) -> None:
    embedded.env["TASKLENS_WORKER_CONCURRENCY"] = "2"
    api = embedded.start_api()
    task_ids = api.enqueue("demo.slow", count=5, steps=2, step_seconds=0.5)  # 1 s each
    for task_id in task_ids:
        api.wait_task(task_id, "success", timeout=30)

    spans = []
    for task_id in task_ids:
        [attempt] = api.task(task_id)["attempts"]
        spans.append((attempt["started_at"], attempt["completed_at"]))
    # Sweep the start and end times: how many ran at the same moment, at most.
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    at_once = list(itertools.accumulate(step for _, step in edges))
    assert max(at_once) == 2


def test_the_embedded_process_is_its_own_worker(embedded: Stack) -> None:
    api = embedded.start_api()
    with api.client() as client:
        state = client.get("/api/v1/queues").json()
    [me] = state["workers"]
    assert me["online"] is True and me["running"] == 0
    assert [q["name"] for q in state["queues"]] == ["high", "default", "low"]
