"""Pausing, resuming and purging a priority queue, with real API and worker processes."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from git_repo import make_repository
from support import VIEWER_TOKEN, Api, Stack, wait_for

# A worker re-reads the paused queues every 0.5 s (broker.PAUSE_CHECK_SECONDS).
PAUSE_TAKES_HOLD = 1.0


def enqueue(api: Api, queue: str, count: int, task: str = "demo.quick", **params: Any) -> list[str]:
    with api.client() as client:
        response = client.post(
            "/api/v1/demo",
            json={"task": task, "count": count, "priority": queue, "params": params or {"n": 1}},
        )
    assert response.status_code == 202, response.text
    task_ids: list[str] = response.json()["task_ids"]
    return task_ids


def control(api: Api, queue: str, action: str, token: str | None = None) -> Any:
    with api.client(token) if token else api.client() as client:
        return client.post(f"/api/v1/queues/{queue}/{action}")


def queues(api: Api) -> dict[str, dict[str, Any]]:
    with api.client() as client:
        return {q["name"]: q for q in client.get("/api/v1/queues").json()["queues"]}


def audit_log(api: Api, action: str) -> list[dict[str, Any]]:
    with api.client(VIEWER_TOKEN) as viewer:
        items: list[dict[str, Any]] = viewer.get("/api/v1/audit", params={"action": action}).json()[
            "items"
        ]
    return items


def statuses(api: Api, task_ids: list[str]) -> list[str]:
    with api.client() as client:  # one connection for them all: hundreds of tasks at a time
        answers = [client.get(f"/api/v1/tasks/{task_id}") for task_id in task_ids]
    return [a.json()["status"] if a.status_code == 200 else "absent" for a in answers]


def test_a_paused_queue_waits_across_restarts_while_the_others_run(distributed: Stack) -> None:
    api = distributed.start_api()
    worker = distributed.start_worker()
    [slow] = enqueue(api, "default", 1, "demo.slow", steps=4, step_seconds=0.5)
    api.wait_task(slow, "running")

    answer = control(api, "default", "pause")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"queue": "default", "paused": True}
    time.sleep(PAUSE_TAKES_HOLD)
    held = enqueue(api, "default", 3)
    [high] = enqueue(api, "high", 1)

    api.wait_task(high, "success", timeout=10)  # another queue is still consumed
    api.wait_task(slow, "success", timeout=10)  # what was running finishes
    time.sleep(2)
    assert statuses(api, held) == ["pending"] * 3
    state = queues(api)
    assert state["default"]["paused"] is True and state["default"]["depth"] == 3
    assert state["high"]["paused"] is False

    worker.stop()  # a new worker and a new API process still see the pause
    api.process.stop()
    api = distributed.start_api("api-2")
    distributed.start_worker("worker-2")
    time.sleep(2)
    assert statuses(api, held) == ["pending"] * 3
    assert queues(api)["default"]["paused"] is True

    assert control(api, "default", "resume").json() == {"queue": "default", "paused": False}
    for task_id in held:
        api.wait_task(task_id, "success", timeout=10)
    assert queues(api)["default"]["paused"] is False
    [paused] = audit_log(api, "pause")
    [resumed] = audit_log(api, "resume")
    assert (paused["actor"], paused["target"], paused["outcome"]) == ("ops", "default", "ok")
    assert (resumed["actor"], resumed["target"], resumed["outcome"]) == ("ops", "default", "ok")


def test_purge_cancels_the_waiting_tasks_and_counts_them(
    distributed: Stack, tmp_path: Path
) -> None:
    repo = make_repository(tmp_path / "repos" / "project")
    distributed.env["TASKLENS_REPO_ROOTS"] = str(tmp_path / "repos")
    api = distributed.start_api()
    with api.client(VIEWER_TOKEN) as viewer:
        for action in ("pause", "resume", "purge"):
            refused = viewer.post(f"/api/v1/queues/default/{action}")
            assert refused.status_code == 403, refused.text
            assert "viewer" in refused.json()["error"]
    unknown = control(api, "urgent", "purge")
    assert unknown.status_code == 400
    assert unknown.json()["error"].startswith("invalid queue:"), unknown.text

    waiting = enqueue(api, "low", 5)  # no worker yet: they wait
    kept = enqueue(api, "default", 2)
    purged = control(api, "low", "purge")
    assert purged.status_code == 200, purged.text
    assert purged.json() == {"queue": "low", "purged": 5}
    for task_id in waiting:
        row = api.wait_task(task_id, "cancelled", timeout=10)
        assert row["error_message"] == "purged by ops"
        assert row["started_at"] is None and row["worker"] is None
    assert queues(api)["low"]["depth"] == 0
    assert control(api, "low", "purge").json()["purged"] == 0  # nothing left to purge

    # A purged analysis frees its subject: asking again runs it anew, not "already running".
    analysis = {"kind": "repository", "subject": str(repo)}
    with api.client() as client:
        first = client.post("/api/v1/analyses", json=analysis).json()
        assert client.post("/api/v1/analyses", json=analysis).json()["task_id"] == first["task_id"]
        assert control(api, "high", "purge").json()["purged"] == 1
        again = client.post("/api/v1/analyses", json=analysis).json()
    assert again["deduplicated"] is False and again["task_id"] != first["task_id"]
    # Each purge on record with the number of messages it removed; a viewer's 403 is not.
    purges = [(e["actor"], e["target"], e["count"], e["outcome"]) for e in audit_log(api, "purge")]
    assert sorted(purges) == [
        ("ops", "high", 1, "ok"),
        ("ops", "low", 0, "ok"),
        ("ops", "low", 5, "ok"),
    ]

    distributed.start_worker()
    for task_id in kept:
        api.wait_task(task_id, "success", timeout=10)
    time.sleep(1)
    assert statuses(api, waiting) == ["cancelled"] * 5  # none ran after the purge


def test_a_purge_while_workers_consume_purges_or_runs_each_task_never_both(
    distributed: Stack,
) -> None:
    api = distributed.start_api()
    distributed.env["TASKLENS_WORKER_CONCURRENCY"] = "4"  # a backlog that lasts seconds
    distributed.start_worker("worker-a")
    distributed.start_worker("worker-b")
    task_ids = enqueue(api, "default", 300, "demo.slow", steps=1, step_seconds=0.2)
    api.wait_task(task_ids[0], "success", timeout=20)  # 8 at a time: ~7 s of backlog left
    results: list[int] = []
    purging = threading.Thread(
        target=lambda: results.append(control(api, "default", "purge").json()["purged"])
    )
    purging.start()
    purging.join(30)
    [purged] = results
    assert 0 < purged < 300

    def settled() -> bool:
        return all(s in ("success", "cancelled") for s in statuses(api, task_ids))

    wait_for(settled, timeout=60, what="every task to end", interval=0.5)
    with api.client() as client:
        rows = [client.get(f"/api/v1/tasks/{task_id}").json() for task_id in task_ids]
    cancelled = [r for r in rows if r["status"] == "cancelled"]
    assert len(cancelled) == purged
    assert all(r["error_message"] == "purged by ops" for r in cancelled)
    # A purged task never started anywhere; every other one ran once.
    assert all(len(r["attempts"]) == 1 and r["started_at"] is None for r in cancelled)
    ran = [r for r in rows if r["status"] == "success"]
    assert len(ran) == 300 - purged
    assert all(len(r["attempts"]) == 1 for r in ran)


def test_the_embedded_queue_holds_a_paused_queue_and_purges_it(embedded: Stack) -> None:
    api = embedded.start_api()
    assert control(api, "default", "pause").status_code == 200
    held = enqueue(api, "default", 3)
    [high] = enqueue(api, "high", 1)
    api.wait_task(high, "success", timeout=10)
    time.sleep(1)
    assert statuses(api, held) == ["pending"] * 3
    state = queues(api)
    assert state["default"] == {
        "name": "default",
        "stream": "tasklens",
        "depth": 3,
        "in_flight": 0,
        "paused": True,
    }

    assert control(api, "default", "resume").status_code == 200
    for task_id in held:
        api.wait_task(task_id, "success", timeout=10)

    control(api, "low", "pause")
    purgeable = enqueue(api, "low", 4)
    assert control(api, "low", "purge").json() == {"queue": "low", "purged": 4}
    for task_id in purgeable:
        assert api.wait_task(task_id, "cancelled")["error_message"] == "purged by ops"
    assert queues(api)["low"]["depth"] == 0
