"""Failure groups over the API, in both databases: grouping, counts and trend, the group's
history, dismissing, bulk retry with its cap, who may do what and bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import STACKS
from support import VIEWER_TOKEN, Api

from tasklens.failures.fingerprint import signature
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import build_recorder
from tasklens.tracking.redaction import REDACTED

NOW = datetime.now(UTC)
FRAME = """Traceback (most recent call last):
  File "/srv/app/.venv/lib/python3.12/site-packages/taskiq/receiver.py", line 9, in run
    await target()
  File "/srv/app/billing/charges.py", line {line}, in {func}
    raise error
{error}
"""


def _failed(
    task_id: str,
    error: str,
    minutes_ago: int,
    *,
    name: str = "billing.charge",
    func: str = "charge",
    attempt: int = 1,
    params: dict[str, Any] | None = None,
) -> LifecycleChange:
    created = NOW - timedelta(minutes=minutes_ago)
    return LifecycleChange(
        task_id=task_id,
        task_name=name,
        status=TaskStatus.FAILED,
        timestamp=as_time(created),
        created_at=as_time(created),
        attempt=attempt,
        params=params if params is not None else {},
        completed_at=as_time(created),
        error_message=error,
        error_traceback=FRAME.format(line=minutes_ago, func=func, error=error),
    )


def _flaky(task_id: str, error: str, minutes_ago: int, **params: Any) -> LifecycleChange:
    params = {"record_id": 1, "failure_rate": 1.0, **params}
    return _failed(task_id, error, minutes_ago, name="demo.flaky", params=params)


ROWS = [
    # Group "order": 3 tasks, 4 failed attempts (a2 twice) in 24 h, one more 30 h ago.
    _failed("a1", "KeyError: order 1001", 10),
    _failed("a2", "KeyError: order 1002", 70),
    _failed("a2", "KeyError: order 1002", 69, attempt=2),
    _failed("a3", "KeyError: order 31337", 130),
    _failed("a0", "KeyError: order 7", 30 * 60),
    # Same message, another frame: another group.
    _failed("b1", "KeyError: order 5", 20, func="refund"),
    # A success is no failure.
    LifecycleChange(
        task_id="s1",
        task_name="billing.charge",
        status=TaskStatus.SUCCESS,
        timestamp=as_time(NOW),
    ),
    # To dismiss.
    _failed("d1", "OSError: disk /var/lib/d1 full", 5),
    _failed("d2", "OSError: disk /var/lib/d2 full", 6),
    # To retry in bulk (demo.flaky is registered, so a retry sends it again).
    _flaky("r1", "RuntimeError: retry me 1", 1),
    _flaky("r2", "RuntimeError: retry me 2", 2),
    _flaky("r3", "RuntimeError: retry me 3", 3),
    _flaky("k1", "RuntimeError: secret run 1", 4, token=REDACTED),
    _flaky("f1", "RuntimeError: filter-me 1", 7),
    _flaky("f2", "RuntimeError: filter-me 2", 8),
]


def fingerprint_of(error: str, func: str = "charge") -> str:
    return signature(error, FRAME.format(line=1, func=func, error=error)).fingerprint


ORDER = fingerprint_of("KeyError: order 1")


@dataclass
class Deployment:
    kind: str
    api: Api

    def client(self, token: str | None = None) -> httpx.Client:
        return self.api.client(token) if token else self.api.client()

    def groups(self, **params: Any) -> dict[str, dict[str, Any]]:
        with self.client() as client:
            response = client.get("/api/v1/failures", params=params)
        assert response.status_code == 200, response.text
        return {g["fingerprint"]: g for g in response.json()["groups"]}

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        with self.client() as client:
            return client.post(f"/api/v1/failures{path}", json=body)

    def audit(self, action: str) -> list[dict[str, Any]]:
        with self.client() as client:
            response = client.get("/api/v1/audit", params={"action": action})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def history_ids(self, **params: Any) -> list[str]:
        with self.client() as client:
            response = client.get("/api/v1/monitoring/history", params=params)
        assert response.status_code == 200, response.text
        return [item["task_id"] for item in response.json()["items"]]


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    workdir: Path = tmp_path_factory.mktemp(f"failures-{request.param}")
    stack = STACKS[request.param](workdir)
    stack.env["TASKLENS_BULK_RETRY_MAX"] = "2"
    try:
        running = stack.start_api()

        async def load() -> None:
            recorder = build_recorder(stack.env["TASKLENS_DATABASE_URL"], None)
            await recorder.store.upsert(ROWS)
            await recorder.store.close()

        asyncio.run(load())
        yield Deployment(request.param, running)
    finally:
        stack.stop_all()


def test_failures_are_grouped_by_type_message_template_and_frame(deployment: Deployment) -> None:
    groups = deployment.groups(time_window=24)
    order = groups[ORDER]
    assert order["exception_type"] == "KeyError"
    assert order["message"] == "order <n>"
    assert order["frame"] == "billing/charges.py:charge"
    assert (order["count"], order["tasks"]) == (4, 3)  # a0 is 30 hours old
    assert order["task_names"] == ["billing.charge"]
    assert order["sample_task_id"] == "a1"  # the newest
    assert "KeyError: order 1001" in order["sample_traceback"]
    assert datetime.fromisoformat(order["last_seen"]) > datetime.fromisoformat(order["first_seen"])
    refund = groups[fingerprint_of("KeyError: order 1", func="refund")]
    assert (refund["count"], refund["tasks"]) == (1, 1)
    assert all(g["exception_type"] != "" or g["message"] for g in groups.values())
    assert "s1" not in {g["sample_task_id"] for g in groups.values()}


def test_the_trend_counts_each_hour_oldest_first(deployment: Deployment) -> None:
    with deployment.client() as client:
        body = client.get("/api/v1/failures", params={"time_window": 24}).json()
    trend = body["groups"][0]["trend"]
    assert len(trend) == 25 and body["bucket_seconds"] == 3600  # the window's first hour too
    order = next(g for g in body["groups"] if g["fingerprint"] == ORDER)
    assert sum(order["trend"]) == 4
    start = datetime.fromisoformat(body["trend_start"])
    expected = [0] * 25
    for minutes in (10, 70, 69, 130):
        moment = (NOW - timedelta(minutes=minutes)).replace(minute=0, second=0, microsecond=0)
        expected[int((moment - start) / timedelta(hours=1))] += 1
    assert order["trend"] == expected
    longer = deployment.groups(time_window=48)[ORDER]
    assert (longer["count"], longer["tasks"]) == (5, 4)


def test_newest_group_first(deployment: Deployment) -> None:
    with deployment.client() as client:
        body = client.get("/api/v1/failures").json()
    last_seen = [g["last_seen"] for g in body["groups"]]
    assert last_seen == sorted(last_seen, reverse=True)
    assert body["group_count"] == len(body["groups"]) and body["truncated"] is False


def test_the_history_filters_by_fingerprint(deployment: Deployment) -> None:
    assert deployment.history_ids(fingerprint=ORDER) == ["a1", "a2", "a2", "a3", "a0"]
    start = (NOW - timedelta(hours=2)).isoformat()
    assert deployment.history_ids(fingerprint=ORDER, start_date=start) == ["a1", "a2", "a2"]
    assert deployment.history_ids(fingerprint="0" * 16) == []


def test_dismissed_tasks_leave_the_failure_views_but_not_the_log(deployment: Deployment) -> None:
    disk = fingerprint_of("OSError: disk /var/lib/x full")
    assert deployment.groups()[disk]["tasks"] == 2
    counted = deployment.post(f"/{disk}/dismiss", {"dry_run": True})
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"dry_run": True, "matched": 2, "dismissed": 0}
    assert disk in deployment.groups()  # a dry run changes nothing

    dismissed = deployment.post(f"/{disk}/dismiss")
    assert dismissed.json() == {"dry_run": False, "matched": 2, "dismissed": 2}
    assert disk not in deployment.groups()
    assert deployment.history_ids(fingerprint=disk) == ["d1", "d2"]  # the rows stay
    recently_failed = deployment.history_ids(status="failed", hide_dismissed="true")
    assert "a1" in recently_failed and not {"d1", "d2"} & set(recently_failed)
    assert {"d1", "d2"} <= set(deployment.history_ids(status="failed"))
    again = deployment.post(f"/{disk}/dismiss")
    assert again.json()["matched"] == 0
    on_record = [e for e in deployment.audit("dismiss") if e["target"] == disk]
    assert [(e["actor"], e["count"], e["outcome"]) for e in on_record] == [
        ("ops", 0, "ok"),  # newest first; the dry run is no action
        ("ops", 2, "ok"),
    ]


# Bulk retries are read back from the group after they are sent: in the distributed mode the
# new tasks wait in the queue (no worker runs here), while the embedded server runs them at
# once and they fail straight back into the group. The code path is one (task_control.retry).
queued_only = pytest.mark.parametrize("deployment", ["distributed"], indirect=True)


@queued_only
def test_bulk_retry_sends_each_task_again_capped(deployment: Deployment) -> None:
    group = fingerprint_of("RuntimeError: retry me 1")
    counted = deployment.post(f"/{group}/retry", {"dry_run": True})
    assert counted.status_code == 202, counted.text
    assert counted.json() | {"retried": None} == {
        "dry_run": True,
        "matched": 3,
        "cap": 2,  # TASKLENS_BULK_RETRY_MAX
        "to_retry": 2,
        "remaining": 1,
        "retried": None,
        "skipped": [],
    }
    first = deployment.post(f"/{group}/retry").json()
    assert [r["retry_of"] for r in first["retried"]] == ["r1", "r2"]  # newest first
    assert first["remaining"] == 1
    for retried in first["retried"]:
        new = deployment.api.wait_task(retried["task_id"], "pending")  # its row is batched
        assert new["task_name"] == "demo.flaky" and new["params"]["failure_rate"] == 1.0
    second = deployment.post(f"/{group}/retry").json()  # retried ones are not sent twice
    assert [r["retry_of"] for r in second["retried"]] == ["r3"] and second["remaining"] == 0
    assert group not in deployment.groups()
    assert deployment.post(f"/{group}/retry").json()["matched"] == 0
    on_record = [e for e in deployment.audit("bulk_retry") if e["target"] == group]
    assert [e["count"] for e in on_record] == [0, 1, 2]  # newest first


@queued_only
def test_a_task_whose_params_had_secrets_is_skipped_and_stays(deployment: Deployment) -> None:
    group = fingerprint_of("RuntimeError: secret run 1")
    outcome = deployment.post(f"/{group}/retry").json()
    assert outcome["retried"] == []
    assert [s["task_id"] for s in outcome["skipped"]] == ["k1"]
    assert "secrets" in outcome["skipped"][0]["error"]
    assert group in deployment.groups()


@queued_only
def test_bulk_retry_of_a_history_filter(deployment: Deployment) -> None:
    body = {"task_name": "demo.flaky", "q": "filter-me"}
    counted = deployment.post("/retry", body | {"dry_run": True}).json()
    assert (counted["matched"], counted["to_retry"]) == (2, 2)
    done = deployment.post("/retry", body).json()
    assert sorted(r["retry_of"] for r in done["retried"]) == ["f1", "f2"]
    assert deployment.post("/retry", body | {"dry_run": True}).json()["matched"] == 0


def test_dismiss_by_a_history_filter(deployment: Deployment) -> None:
    refund = fingerprint_of("KeyError: order 1", func="refund")
    body = {"fingerprint": refund}
    assert deployment.post("/dismiss", body | {"dry_run": True}).json()["matched"] == 1
    assert deployment.post("/dismiss", body).json()["dismissed"] == 1
    assert refund not in deployment.groups()


def test_a_viewer_sees_groups_but_cannot_act(deployment: Deployment) -> None:
    with deployment.client(VIEWER_TOKEN) as client:
        assert client.get("/api/v1/failures").status_code == 200
        for path in (f"/{ORDER}/retry", f"/{ORDER}/dismiss", "/retry", "/dismiss"):
            response = client.post(f"/api/v1/failures{path}", json={})
            assert response.status_code == 403, path
            assert "viewer" in response.json()["error"]
    with httpx.Client(base_url=deployment.api.base_url) as anonymous:
        assert anonymous.get("/api/v1/failures").status_code == 401
    assert ORDER in deployment.groups()


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/failures?time_window=0", None, "time_window"),
        ("GET", "/failures?time_window=721", None, "time_window"),
        ("GET", "/failures?window=24", None, "window"),
        ("POST", "/failures/XYZ/retry", None, "fingerprint"),
        ("POST", f"/failures/{ORDER}/retry", {"time_window": -1}, "time_window"),
        ("POST", f"/failures/{ORDER}/dismiss", {"dry": True}, "dry"),
        ("POST", f"/failures/{ORDER}/dismiss", {"dry_run": 0}, "dry_run"),  # not a boolean
        ("POST", "/failures/retry", {"start_date": 0}, "start_date"),  # not a Unix time
        ("POST", "/failures/retry", {"fingerprint": "nothex"}, "fingerprint"),
        ("POST", "/failures/retry", {"start_date": "yesterday"}, "start_date"),
        (
            "POST",
            "/failures/dismiss",
            {"start_date": "2026-01-02T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
            "start_date",
        ),
        ("GET", "/monitoring/history?fingerprint=abc", None, "fingerprint"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(
    deployment: Deployment, method: str, path: str, body: Any, field: str
) -> None:
    with deployment.client() as client:
        response = client.request(method, f"/api/v1{path}", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert field in response.json()["error"]
