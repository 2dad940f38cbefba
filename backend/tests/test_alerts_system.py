"""Alerts on the real stack: `tasklens serve` processes, a worker, the demo tasks and a
local webhook receiver (issue 16's checks)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from support import Stack, wait_for
from webhook_receiver import SECRET_PATH, Receiver, webhook_receiver

INTERVAL = "0.5"


def alerts_file(workdir: Path, receiver: Receiver, *rules: dict[str, Any]) -> Path:
    path = workdir / "alerts.json"
    path.write_text(json.dumps({"webhooks": {"ops": receiver.url}, "rules": list(rules)}))
    return path


FLAKY_RULE = {
    "name": "flaky-failing",
    "kind": "failure_rate",
    "task_name": "demo.flaky",
    "window_minutes": 5,
    "threshold": 0.5,
    "min_runs": 5,
    "notify": ["ops"],
    "cooldown_minutes": 10,
}


def of_rule(receiver: Receiver, rule: str, state: str) -> list[dict[str, Any]]:
    return [b for b in receiver.bodies(state) if b["rule"] == rule]


def test_two_api_processes_send_one_firing_no_repeat_then_resolved_and_no_workers(
    distributed: Stack,
) -> None:
    with webhook_receiver() as receiver:
        nobody = {"name": "nobody", "kind": "no_workers", "threshold": 2, "notify": ["ops"]}
        distributed.env["TASKLENS_ALERTS_FILE"] = str(
            alerts_file(distributed.workdir, receiver, FLAKY_RULE, nobody)
        )
        distributed.env["TASKLENS_ALERTS_INTERVAL_SECONDS"] = INTERVAL
        worker = distributed.start_worker()  # first: `nobody` must not fire before it stops
        one = distributed.start_api("api-1")
        two = distributed.start_api("api-2")

        task_ids = one.enqueue("demo.flaky", count=8, failure_rate=1.0)
        started = time.monotonic()
        wait_for(
            lambda: len(of_rule(receiver, "flaky-failing", "firing")) >= 1,
            timeout=30,
            what="the firing webhook",
        )
        assert time.monotonic() - started < 30
        one.wait_task(task_ids[-1], "failed")
        time.sleep(4)  # eight rounds of two processes: still one firing
        [firing] = of_rule(receiver, "flaky-failing", "firing")
        assert firing["value"] == 1.0 and firing["threshold"] == 0.5
        assert firing["url"].endswith("/monitoring?status=failed&task_name=demo.flaky")
        assert firing["_path"] == SECRET_PATH

        with two.client() as client:
            rules = client.get("/api/v1/alerts/rules").json()
            alerts = client.get("/api/v1/alerts").json()
        assert rules["webhooks"] == {"ops": receiver.url.split("/hooks")[0] + "/…"}
        states = {r["name"]: r["state"] for r in rules["rules"]}
        assert states == {"flaky-failing": "firing", "nobody": "ok"}
        assert [f["rule"] for f in alerts["firing"]] == ["flaky-failing"]

        # recovery: successes bring the share under the threshold
        ok_ids = one.enqueue("demo.flaky", count=20, failure_rate=0.0)
        one.wait_task(ok_ids[-1], "success")
        wait_for(
            lambda: len(of_rule(receiver, "flaky-failing", "resolved")) >= 1,
            timeout=30,
            what="the resolved webhook",
        )
        [resolved] = of_rule(receiver, "flaky-failing", "resolved")
        assert resolved["firing_id"] == firing["firing_id"]

        # the worker stops: no worker online for longer than 2 s
        assert of_rule(receiver, "nobody", "firing") == []
        worker.stop(signal.SIGTERM)
        wait_for(
            lambda: len(of_rule(receiver, "nobody", "firing")) >= 1,
            timeout=30,
            what="the no_workers webhook",
        )
        time.sleep(2)
        assert len(of_rule(receiver, "flaky-failing", "firing")) == 1
        assert len(of_rule(receiver, "nobody", "firing")) == 1
        for api in (one, two):  # the webhook's secret path is in no log
            assert SECRET_PATH not in api.process.log()
            assert "/hooks" not in api.process.log()


def test_a_receiver_answering_500_is_retried_while_the_api_stays_responsive(
    embedded: Stack,
) -> None:
    # each answer takes a second and is a 500, three times; then a 200
    with webhook_receiver(answers=[500, 500, 500], delay=1.0) as receiver:
        embedded.env["TASKLENS_ALERTS_FILE"] = str(
            alerts_file(embedded.workdir, receiver, FLAKY_RULE | {"min_runs": 3})
        )
        embedded.env["TASKLENS_ALERTS_INTERVAL_SECONDS"] = INTERVAL
        api = embedded.start_api()
        api.enqueue("demo.flaky", count=5, failure_rate=1.0)
        receiver.wait(1, "firing", timeout=30)
        slowest = 0.0
        with api.client() as client:
            while len(receiver.bodies()) < 4:
                started = time.monotonic()
                assert client.get("/api/v1/alerts").status_code == 200
                assert client.get("/api/v1/queues").status_code == 200
                slowest = max(slowest, time.monotonic() - started)
                time.sleep(0.05)
        receiver.wait(4, "firing", timeout=60)
        assert slowest < 0.5, f"an API call took {slowest:.2f} s while the webhook was retried"
        time.sleep(1)
        assert len(receiver.bodies()) == 4  # delivered at the fourth attempt, not sent again
        log = api.process.log()
        assert "alert webhook ops (http://127.0.0.1:" in log and "answered 500" in log
        assert SECRET_PATH not in log
        with httpx.Client(base_url=api.base_url) as anonymous:
            assert anonymous.get("/api/v1/alerts").status_code == 401
