"""The behaviour suite: the same user-visible lifecycle in both run modes.

Embedded: one `tasklens serve` process on SQLite. Distributed: `tasklens serve` plus a
`tasklens worker` process, sharing only PostgreSQL and Redis.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from conftest import STACKS
from support import OPERATOR_TOKEN, VIEWER_TOKEN, Api, LiveEvents, seen_live

from tasklens.tracking.models import STATUS_RANK, TaskStatus


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One running deployment per mode, shared by this module's tests."""
    stack = STACKS[request.param](tmp_path_factory.mktemp(request.param))
    try:
        running = stack.start_api()
        if request.param == "distributed":
            stack.start_worker()
        yield running
    finally:
        stack.stop_all()


async def test_a_task_is_seen_pending_running_then_success(api: Api) -> None:
    async with LiveEvents(api.ws_url()) as live:
        [task_id] = api.enqueue("demo.quick", n=7)
        await live.wait_status(task_id, "success")

    assert set(live.statuses(task_id)) in [
        set(s) for s in seen_live("pending", "running", "success")
    ]
    task = api.wait_task(task_id, "success")
    assert task["task_name"] == "demo.quick"
    assert task["result"] == {"n": 7, "square": 49}
    assert task["params"] == {"n": 7}
    assert task["duration_ms"] > 0
    assert task["started_at"] <= task["completed_at"]
    [attempt] = task["attempts"]
    assert attempt["status"] == "success"
    assert ":" in attempt["worker"]  # host:pid
    assert task["worker"] == attempt["worker"]
    # What the task page's timeline is drawn from: enqueued, waited, ran, on which queue.
    assert attempt["created_at"] <= attempt["started_at"] <= attempt["completed_at"]
    assert attempt["queue"] == task["queue"] and task["queue"]
    # When each live event happened: RFC 3339 text in UTC (a worker sends Unix seconds, the
    # server's reader converts them), the outcome's the very moment the row completed at.
    # `pending` comes from the API and the rest from the worker, so `running` may arrive
    # first (the feed places a late event below later ones: feed-store.ts). In the order of
    # the task's life, each state is dated no earlier than the one before it.
    events = [
        f for f in live.frames if f.get("type") == "task_event" and f["data"]["task_id"] == task_id
    ]
    events.sort(key=lambda f: STATUS_RANK[TaskStatus(f["status"])])
    times = [f["timestamp"] for f in events]
    assert all(isinstance(t, str) and t.endswith("+00:00") for t in times)
    assert times == sorted(times, key=datetime.fromisoformat)
    assert datetime.fromisoformat(times[-1]) == datetime.fromisoformat(task["completed_at"])


async def test_a_failing_task_keeps_its_error_and_full_traceback(api: Api) -> None:
    async with LiveEvents(api.ws_url()) as live:
        [task_id] = api.enqueue("demo.flaky", record_id=3, failure_rate=1.0)
        await live.wait_status(task_id, "failed")

    failed = [f for f in live.frames if f.get("type") == "task_event" and f["status"] == "failed"]
    assert failed[0]["data"]["error_message"] == "DemoFailure: could not import record 3"
    task = api.wait_task(task_id, "failed")
    traceback = task["attempts"][0]["error_traceback"]
    assert "_parse_record" in traceback
    assert "ValueError: invalid literal for int()" in traceback
    assert "DemoFailure: could not import record 3" in traceback


async def test_progress_reaches_live_clients_and_the_task(api: Api) -> None:
    async with LiveEvents(api.ws_url()) as live:
        [task_id] = api.enqueue("demo.slow", steps=3, step_seconds=0.3)
        await live.wait_status(task_id, "success")

    progress = [
        f["data"]["progress"]
        for f in live.frames
        if f.get("type") == "task_event"
        and f["data"]["task_id"] == task_id
        and f["data"]["progress"] is not None
    ]
    assert progress[:3] == pytest.approx([0, 1 / 3, 2 / 3])
    assert progress[-1] == 1.0
    notes = [
        f["data"]["progress_message"]
        for f in live.frames
        if f.get("type") == "task_event"
        and f["data"]["task_id"] == task_id  # other tests' tasks may still be running
        and f["data"]["progress_message"]
    ]
    assert notes[:3] == ["step 1 of 3", "step 2 of 3", "step 3 of 3"]
    assert api.wait_task(task_id, "success")["progress"] == 1.0


async def test_secrets_in_params_are_redacted_everywhere(api: Api) -> None:
    secret = "hunter2-very-secret"
    async with LiveEvents(api.ws_url()) as live:
        [task_id] = api.enqueue(
            "demo.quick", n=1, api_token=secret, nested={"password": secret, "ok": "visible"}
        )
        await live.wait_status(task_id, "failed")  # quick() takes no api_token: TypeError

    task = api.wait_task(task_id, "failed")
    assert task["params"] == {
        "n": 1,
        "api_token": "***",
        "nested": {"password": "***", "ok": "visible"},
    }
    assert secret not in str(live.frames)
    with api.client() as client:
        history = client.get("/api/v1/monitoring/history", params={"status": "failed"}).text
    assert secret not in history
    assert secret not in api.process.log()


def _counts(api: Api) -> dict[str, dict[str, int]]:
    with api.client() as client:
        metrics = client.get("/api/v1/monitoring/metrics", params={"time_window": 1}).json()
    return {m["task_name"]: m for m in metrics["metrics"]}


async def test_history_and_metrics_show_what_ran(api: Api) -> None:
    before = _counts(api)
    ok_ids = api.enqueue("demo.quick", count=4, n=2)
    bad_ids = api.enqueue("demo.flaky", count=2, failure_rate=1.0)
    for task_id in ok_ids:
        api.wait_task(task_id, "success")
    for task_id in bad_ids:
        api.wait_task(task_id, "failed")

    with api.client() as client:
        failed = client.get(
            "/api/v1/monitoring/history", params={"task_name": "demo.flaky", "status": "failed"}
        ).json()
        names = client.get("/api/v1/monitoring/task-names").json()
    after = _counts(api)

    assert {item["task_id"] for item in failed["items"]} >= set(bad_ids)
    assert all(
        item["task_name"] == "demo.flaky" and item["status"] == "failed" for item in failed["items"]
    )
    assert failed["total_count"] == after["demo.flaky"]["failed"]
    quick_before = before.get("demo.quick", {}).get("success", 0)
    flaky_before = before.get("demo.flaky", {}).get("failed", 0)
    assert after["demo.quick"]["success"] == quick_before + 4
    assert after["demo.flaky"]["failed"] == flaky_before + 2
    assert after["demo.flaky"]["success_rate"] == 0.0
    assert {"demo.flaky", "demo.quick"} <= set(names)


async def test_live_events_need_a_token(api: Api) -> None:
    import websockets

    async with websockets.connect(api.ws_url(token="wrong-token-0123456789")) as socket_:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket_.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    async with websockets.connect(api.ws_url(token=None)) as socket_:
        await socket_.send(json.dumps({"type": "auth", "token": VIEWER_TOKEN}))
        hello = await socket_.recv()
    assert '"role": "viewer"' in str(hello)


async def test_tokens_in_urls_never_reach_the_server_log(api: Api) -> None:
    async with LiveEvents(api.ws_url()):  # ?token=… on the WebSocket URL
        pass
    with api.client(token=None) as client:
        client.get("/monitoring", params={"token": OPERATOR_TOKEN})  # the printed dashboard link
    log = api.process.log()
    assert "/api/v1/ws?token=***" in log
    assert OPERATOR_TOKEN not in log


SPELLINGS = [
    "/monitoring?token={}",
    "/monitoring?%74oken={}",
    "/monitoring?TOKEN={}",
    "/monitoring?token%3D{}",
    "/monitoring?page=1;token={}",
    "/monitoring;token={}",
    "/monitoring?token=x-first&token={}",
    "/monitoring?%2574oken={}",
    "/api/v1/ws?tok%65n={}",
]


def test_no_spelling_of_a_token_in_a_url_reaches_the_server_log(api: Api) -> None:
    """Sent byte for byte (http.client does not normalise the path), each with its own
    secret so a leak names its spelling; the Referer carries one too."""
    port = int(api.base_url.rsplit(":", 1)[1])
    secrets = [f"leaked-secret-{i:02d}-0123456789" for i in range(len(SPELLINGS))]
    for spelling, secret in zip(SPELLINGS, secrets, strict=True):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        referer = f"http://127.0.0.1:{port}{spelling.format(secret + '-ref')}"
        connection.request("GET", spelling.format(secret), headers={"Referer": referer})
        assert connection.getresponse().status < 500
        connection.close()
    log = api.process.log()
    assert [s for s in secrets if s in log] == []
    assert "/monitoring?%74oken=" not in log and "/monitoring?token=***" in log


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        ("/monitoring", OPERATOR_TOKEN, 200),  # the SPA (or its placeholder)
        ("/api/v1/monitoring/task-names", OPERATOR_TOKEN, 200),
        ("/api/v1/monitoring/task-names", None, 401),
        ("/api/v1/tasks/no-such-task", OPERATOR_TOKEN, 404),
        ("/api/v1/no-such-route", OPERATOR_TOKEN, 404),
        ("/health", None, 200),
        ("/api/v1/openapi.json", None, 200),
    ],
)
def test_every_response_sends_no_referrer(
    api: Api, path: str, token: str | None, status: int
) -> None:
    with api.client(token=token) as client:
        response = client.get(path)
    assert response.status_code == status, response.text[:300]
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_unknown_task_is_a_404(api: Api) -> None:
    with api.client() as client:
        response = client.get("/api/v1/tasks/no-such-task")
    assert response.status_code == 404
    assert response.json() == {"error": "no task with task_id 'no-such-task'"}


def test_a_task_without_a_row_yet_is_a_204_for_a_page_that_waits_for_it(api: Api) -> None:
    with api.client() as client:
        waiting = client.get("/api/v1/tasks/not-logged-yet", params={"missing_ok": "true"})
        assert (waiting.status_code, waiting.content) == (204, b"")
        [task_id] = api.enqueue("demo.quick", n=2)
        api.wait_task(task_id, "success")
        found = client.get(f"/api/v1/tasks/{task_id}", params={"missing_ok": "true"})
        assert (found.status_code, found.json()["status"]) == (200, "success")
        assert client.get("/api/v1/tasks/x", params={"missing_ok": "maybe"}).status_code == 400


def test_a_failed_task_is_retried_as_a_new_task_with_its_params(api: Api) -> None:
    [task_id] = api.enqueue("demo.flaky", record_id=9, failure_rate=1.0)
    api.wait_task(task_id, "failed")
    with api.client() as client:
        retried = client.post(f"/api/v1/tasks/{task_id}/retry")
        assert retried.status_code == 202
        assert retried.json()["retry_of"] == task_id
        new_id = retried.json()["task_id"]
        assert new_id != task_id
        again = api.wait_task(new_id, "failed")  # same params: it fails the same way
        assert again["params"] == {"record_id": 9, "failure_rate": 1.0}

        [ok] = api.enqueue("demo.quick", n=1)
        api.wait_task(ok, "success")
        refused = client.post(f"/api/v1/tasks/{ok}/retry")
        assert refused.status_code == 409
        assert refused.json()["error"].endswith("only failed or cancelled tasks can be retried")
        assert client.post("/api/v1/tasks/nope/retry").status_code == 404
    with api.client(VIEWER_TOKEN) as viewer:
        assert viewer.post(f"/api/v1/tasks/{task_id}/retry").status_code == 403
        # Every attempt is on record, refusals too; a viewer may read it.
        audit = viewer.get("/api/v1/audit", params={"action": "retry", "limit": 500}).json()
    mine = {e["target"]: e for e in audit["items"] if e["target"] in (task_id, ok, "nope")}
    assert mine[task_id]["outcome"] == "ok"
    assert mine[task_id]["actor"] == "ops"
    assert mine[task_id]["detail"] == {"new_task_id": new_id}
    assert mine[ok]["outcome"].startswith(f"refused: task '{ok}' is success")
    assert mine["nope"]["outcome"] == "refused: no task with task_id 'nope'"
    # A viewer's 403 never reached the action: it is an authorisation refusal, not an action.
    assert sum(e["target"] == task_id for e in audit["items"]) == 1


def test_a_task_whose_params_held_secrets_is_not_replayed(api: Api) -> None:
    [task_id] = api.enqueue("demo.quick", n=1, password="hunter2")  # TypeError: fails
    api.wait_task(task_id, "failed")
    with api.client() as client:
        refused = client.post(f"/api/v1/tasks/{task_id}/retry")
    assert refused.status_code == 409
    assert "secrets" in refused.json()["error"]


def test_a_running_task_is_cancelled_within_two_seconds(api: Api) -> None:
    [task_id] = api.enqueue("demo.slow", steps=40, step_seconds=0.5)  # 20 s if left alone
    api.wait_task(task_id, "running")
    with api.client() as client:
        asked = time.monotonic()
        response = client.post(f"/api/v1/tasks/{task_id}/cancel")
        assert response.json() == {"task_id": task_id, "status": "cancelling"}
        cancelled = api.wait_task(task_id, "cancelled", timeout=5)
        assert time.monotonic() - asked < 2.5  # stopped, and its row written, in time
        assert cancelled["attempts"][0]["error_message"] == (
            "CancelledError: cancelled by an operator"
        )
        assert client.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 409
    with api.client(VIEWER_TOKEN) as viewer:
        assert viewer.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 403
        audit = viewer.get("/api/v1/audit", params={"action": "cancel", "limit": 500}).json()
    outcomes = [(e["detail"], e["outcome"]) for e in audit["items"] if e["target"] == task_id]
    assert outcomes == [  # newest first: the second cancel found it cancelled already
        (None, f"refused: task '{task_id}' is already cancelled"),
        ({"status": "cancelling"}, "ok"),
    ]


def test_the_worker_keeps_working_after_a_cancel(api: Api) -> None:
    [slow] = api.enqueue("demo.slow", steps=40, step_seconds=0.5)
    api.wait_task(slow, "running")
    with api.client() as client:
        client.post(f"/api/v1/tasks/{slow}/cancel")
    api.wait_task(slow, "cancelled", timeout=5)
    [quick] = api.enqueue("demo.quick", n=3)
    assert api.wait_task(quick, "success")["result"] == {"n": 3, "square": 9}
