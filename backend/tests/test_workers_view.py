"""The workers list says what each worker did since it started: tasks processed and failed,
uptime, concurrency and the queues it consumes, from a real worker (or the embedded server)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import STACKS
from support import Api, wait_for


def _workers(api: Api) -> list[dict[str, Any]]:
    with api.client() as client:
        response = client.get("/api/v1/queues")
    assert response.status_code == 200, response.text
    workers: list[dict[str, Any]] = response.json()["workers"]
    return workers


@pytest.mark.system
@pytest.mark.parametrize("mode", ["embedded", "distributed"])
def test_a_worker_counts_its_successes_and_failures_since_it_started(
    tmp_path: Any, mode: str
) -> None:
    stack = STACKS[mode](tmp_path)
    stack.env["TASKLENS_WORKER_CONCURRENCY"] = "7"
    stack.env["TASKLENS_QUEUE_NAME"] = "workers"
    try:
        api = stack.start_api()
        if mode == "distributed":
            stack.start_worker()
        succeeded = api.enqueue("demo.flaky", count=5, failure_rate=0.0)
        failed = api.enqueue("demo.flaky", count=3, failure_rate=1.0)
        for task_id in succeeded:
            api.wait_task(task_id, "success")
        for task_id in failed:
            api.wait_task(task_id, "failed")
        # A worker's figures arrive with its next heartbeat (every 5 s).
        wait_for(
            lambda: [w["processed"] for w in _workers(api)] == [8],
            timeout=20,
            what=f"one worker with 8 processed ({_workers(api)})",
        )
        [worker] = _workers(api)
        queues = ["workers:high", "workers", "workers:low"]  # the embedded server's too
        assert (worker["failed"], worker["concurrency"], worker["queues"]) == (3, 7, queues)
        assert worker["online"] is True
        time.sleep(1.5)
        [later] = _workers(api)
        assert later["uptime_seconds"] >= worker["uptime_seconds"] + 1
        assert later["started_at"] == worker["started_at"]
    finally:
        stack.stop_all()
