"""Hostile values through real processes: SQL, HTML, emoji, right-to-left marks and NUL bytes in
task names, params, error messages and tracebacks; data nested 10,000 levels deep; 5 MB values.
Stored and returned intact (NUL becomes U+FFFD: PostgreSQL cannot hold it), cut short when too
big or too deep, and never a 5xx or a stuck log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import distributed_stack
from support import OPERATOR_TOKEN, VIEWER_TOKEN, Api, LiveEvents, Stack, app_module
from taskiq.kicker import AsyncKicker

HERE = Path(__file__).parent
NUL_FREE = "\ufffd"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Api]]:
    stack = distributed_stack(tmp_path_factory.mktemp("hostile"))
    try:
        api = stack.start_api()
        stack.start_worker()
        yield stack, api
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def api(stack: tuple[Stack, Api]) -> Api:
    return stack[1]


@pytest.fixture(scope="module")
async def hostile(stack: tuple[Stack, Api]) -> AsyncIterator[Any]:
    """`hostile_app`'s worker in its own process; its client (this process) kicks tasks."""
    env = stack[0].env
    app_env = {
        "HOSTILE_REDIS_URL": env["TASKLENS_REDIS_URL"],
        "HOSTILE_DATABASE_URL": env["TASKLENS_DATABASE_URL"],
    }
    with app_module("hostile_app", app_env) as hostile_app:
        log = (stack[0].workdir / "hostile-worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "taskiq", "worker", "hostile_app:broker", "--workers", "1"],
            cwd=HERE,
            env={**os.environ, "PYTHONPATH": str(HERE)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        await hostile_app.broker.startup()
        try:
            yield hostile_app
        finally:
            await hostile_app.broker.shutdown()
            worker.terminate()
            worker.wait(20)


async def _finished(api: Api, task_id: str, timeout: float = 30) -> dict[str, Any]:
    """Polls without blocking this loop: it also flushes the hostile client's `pending` rows."""
    headers = api.client().headers
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=api.base_url, headers=headers) as client:
        while time.monotonic() < deadline:
            response = await client.get(f"/api/v1/tasks/{task_id}")
            assert response.status_code in (200, 404), response.text
            body: dict[str, Any] = response.json()
            if body.get("status") in ("success", "failed") and body.get("params") is not None:
                return body
            await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish: {body}")


async def _row(api: Api, task_id: str, timeout: float = 30) -> dict[str, Any]:
    """The task's row once it has params, whatever its status."""
    headers = api.client().headers
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=api.base_url, headers=headers) as client:
        while time.monotonic() < deadline:
            response = await client.get(f"/api/v1/tasks/{task_id}")
            body: dict[str, Any] = response.json()
            if response.status_code == 200 and body.get("params") is not None:
                return body
            await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} was never logged")


def _stored(text: str) -> str:
    return text.replace("\x00", NUL_FREE)


async def test_a_failure_with_sql_html_emoji_rtl_and_nul_is_shown_intact(
    hostile: Any, api: Api
) -> None:
    sent = await hostile.fail.kiq(hostile.HOSTILE_TEXT)
    task = await _finished(api, sent.task_id)
    assert task["status"] == "failed"
    expected = "ValueError: " + _stored(hostile.HOSTILE_TEXT)
    assert task["attempts"][0]["error_message"] == expected
    assert expected in task["attempts"][0]["error_traceback"]
    assert task["params"] == {"_args": [_stored(hostile.HOSTILE_TEXT)]}
    with api.client() as client:
        history = client.get("/api/v1/monitoring/history", params={"task_name": "hostile.fail"})
    assert history.status_code == 200
    assert [item["error_message"] for item in history.json()["items"]] == [expected]


async def test_a_hostile_task_name_is_listed_and_filtered_on(hostile: Any, api: Api) -> None:
    sent = await hostile.echo.kiq({"html": "<img src=x onerror=alert(1)>", "nul\x00name": 1})
    task = await _finished(api, sent.task_id)
    assert task["task_name"] == hostile.HOSTILE_NAME
    assert task["result"] == {"html": "<img src=x onerror=alert(1)>", f"nul{NUL_FREE}name": 1}
    with api.client() as client:
        assert hostile.HOSTILE_NAME in client.get("/api/v1/monitoring/task-names").json()
        history = client.get(
            "/api/v1/monitoring/history", params={"task_name": hostile.HOSTILE_NAME}
        ).json()
    assert [item["task_id"] for item in history["items"]] == [sent.task_id]


async def test_a_result_nested_10000_levels_is_kept_as_a_preview(hostile: Any, api: Api) -> None:
    sent = await hostile.deep.kiq(10_000)
    task = await _finished(api, sent.task_id)
    assert task["status"] == "success", task
    assert isinstance(task["result"], str) and task["result"].startswith("[[[[")
    assert len(task["result"]) < 1_000


async def test_params_nested_200_levels_are_cut_at_depth_20(hostile: Any, api: Api) -> None:
    """200 levels: about as deep as taskiq's own serializer lets a client send."""
    nested: Any = "bottom"
    for _ in range(200):
        nested = {"d": nested}
    sent = await hostile.echo.kiq(nested)
    task = await _finished(api, sent.task_id)
    assert task["status"] == "success", task
    params, depth = task["params"]["_args"][0], 0
    while isinstance(params, dict):
        params, depth = params["d"], depth + 1
    assert (params, depth) == ("…", 19)  # 21 levels with the params object and `_args`
    assert task["result"] == nested  # results are not redacted: kept whole under 254 levels


async def test_a_5_mb_param_and_result_are_cut_to_64_kb(hostile: Any, api: Api) -> None:
    sent = await hostile.echo.kiq("x" * 5_000_000)
    task = await _finished(api, sent.task_id, timeout=60)
    assert task["status"] == "success"
    for stored in (task["params"], task["result"]):
        assert stored["truncated"] is True
        assert len(stored["preview"]) == 64_000


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body) == {"error"} and body["error"], body
    return str(body["error"])


def test_a_body_over_1_mib_is_a_413(api: Api) -> None:
    huge = {"task": "demo.quick", "params": {"n": "x" * 5_000_000}}
    with api.client() as client:
        assert "too large" in _error(client.post("/api/v1/demo", json=huge), 413)

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"task": "demo.quick", "params": {"n": "'
            for _ in range(50):
                yield b"x" * 100_000
            yield b'"}}'

        response = client.post(
            "/api/v1/demo", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "too large" in _error(response, 413)


def test_params_over_64_kb_or_too_deep_are_a_400(api: Api) -> None:
    deep: Any = 0
    for _ in range(300):
        deep = {"d": deep}
    with api.client() as client:
        big = {"task": "demo.quick", "params": {"n": "x" * 100_000}}
        assert _error(client.post("/api/v1/demo", json=big), 400).startswith("invalid params")
        nested = {"task": "demo.quick", "params": deep}
        assert "nested" in _error(client.post("/api/v1/demo", json=nested), 400)


def test_a_body_nested_10000_levels_is_a_400(api: Api) -> None:
    body = '{"task": "demo.quick", "params": {"n": ' + "[" * 10_000 + "]" * 10_000 + "}}"
    with api.client() as client:
        response = client.post(
            "/api/v1/demo", content=body, headers={"Content-Type": "application/json"}
        )
    _error(response, 400)


async def test_hostile_params_through_the_api_are_stored_intact(api: Api) -> None:
    text = "'; DROP TABLE x;-- <script>1</script> 📦 \u202eRTL NUL:\x00"
    with api.client() as client:
        response = client.post("/api/v1/demo", json={"task": "demo.quick", "params": {"n": text}})
    assert response.status_code == 202, response.text
    task = await _finished(api, response.json()["task_ids"][0])
    assert task["params"] == {"n": _stored(text)}
    assert task["status"] == "failed"  # `n * n` on a string


HOSTILE_SUBJECTS = [
    "'; DROP TABLE analysis_results;--",
    "<script>alert(1)</script>",
    "nul\x00byte",
    "/srv/nul\x00path",
    "https://example.com/re\x00po.git",
    "📦 שלום \u202e",
]


@pytest.mark.parametrize("subject", HOSTILE_SUBJECTS)
@pytest.mark.parametrize("kind", ["repository", "github_user"])
def test_hostile_subjects_are_refused_by_name(api: Api, kind: str, subject: str) -> None:
    with api.client() as client:
        for path in ("/api/v1/analyses", "/api/v1/analyses/sync"):
            response = client.post(path, json={"kind": kind, "subject": subject})
            assert _error(response, 400).startswith("invalid subject"), path
        response = client.get(f"/api/v1/analyses/{kind}/{quote(subject, safe='')}")
        assert response.status_code == 400, response.text


def test_nul_in_query_and_path_parameters_is_a_400(api: Api) -> None:
    with api.client() as client:
        response = client.get("/api/v1/monitoring/history", params={"task_name": "a\x00b"})
        assert _error(response, 400) == "invalid task_name: contains a NUL byte"
        assert "NUL" in _error(client.get("/api/v1/tasks/a%00b"), 400)
        assert "NUL" in _error(client.post("/api/v1/tasks/a%00b/retry"), 400)


def test_sql_and_html_in_a_task_id_are_only_looked_up(api: Api) -> None:
    task_id = "x' OR '1'='1<b>"
    with api.client() as client:
        error = _error(client.get(f"/api/v1/tasks/{quote(task_id)}"), 404)
    assert error == f"no task with task_id '{task_id}'"


SECRET_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"


async def test_a_positional_secret_is_redacted_by_its_parameter_name(
    hostile: Any, api: Api
) -> None:
    sent = await hostile.send_invoice.kiq("inv-1", SECRET_KEY)
    task = await _finished(api, sent.task_id)
    assert task["params"] == {"_args": ["inv-1", "***"]}
    assert task["result"] == {"invoice": "inv-1", "api_key": "***", "note": "charged with ***"}
    assert SECRET_KEY not in str(task)


async def test_a_positional_secret_of_an_unknown_task_is_redacted_by_its_shape(
    hostile: Any, api: Api
) -> None:
    """Kicked by name only: neither this client nor the worker has the function."""
    kicker: AsyncKicker[Any, Any] = AsyncKicker("billing.unknown", hostile.broker, {})
    sent = await kicker.kiq("inv-1", SECRET_KEY, "Bearer abc123def456", 42, ["inv-2"])
    task = await _row(api, sent.task_id)
    assert task["params"] == {"_args": ["inv-1", "***", "***", 42, ["inv-2"]]}


async def test_secrets_of_the_params_never_reach_the_error_or_traceback(
    hostile: Any, stack: tuple[Stack, Api], api: Api
) -> None:
    async with LiveEvents(api.ws_url()) as live:
        sent = await hostile.send_invoice.kiq("refuse", SECRET_KEY)
        task = await _finished(api, sent.task_id)
        await live.wait_status(sent.task_id, "failed")
    attempt = task["attempts"][0]
    assert attempt["error_message"] == "RuntimeError: gateway refused key *** for refuse"
    assert "gateway refused key *** for refuse" in attempt["error_traceback"]
    assert SECRET_KEY not in str(task)
    assert SECRET_KEY not in str(live.frames)
    with api.client() as client:
        history = client.get("/api/v1/monitoring/history", params={"status": "failed"}).text
    assert SECRET_KEY not in history
    # taskiq's own log line with the traceback, in the foreign worker's log
    worker_log = (stack[0].workdir / "hostile-worker.log").read_text(errors="replace")
    assert "gateway refused key *** for refuse" in worker_log
    assert SECRET_KEY not in worker_log


async def test_the_api_tokens_never_reach_an_error_of_tasklens_own_worker(
    stack: tuple[Stack, Api], api: Api
) -> None:
    """demo.flaky puts its record id in its error: here, the API tokens themselves."""
    async with LiveEvents(api.ws_url()) as live:
        task_ids = [
            api.enqueue("demo.flaky", record_id=token, failure_rate=1.0)[0]
            for token in (VIEWER_TOKEN, OPERATOR_TOKEN)
        ]
        for task_id in task_ids:
            await live.wait_status(task_id, "failed")
    for task_id in task_ids:
        attempt = api.wait_task(task_id, "failed")["attempts"][0]
        assert attempt["error_message"] == "DemoFailure: could not import record ***"
        assert "invalid literal for int() with base 10: 'record-***'" in attempt["error_traceback"]
    errors = [
        f["data"]["error_message"]
        for f in live.frames
        if f.get("status") == "failed" and f["data"]["task_id"] in task_ids
    ]
    assert errors == ["DemoFailure: could not import record ***"] * 2
    [worker] = [p for p in stack[0].processes if p.name == "worker"]
    assert "could not import record ***" in worker.log()
    assert VIEWER_TOKEN not in worker.log() and OPERATOR_TOKEN not in worker.log()


async def test_an_exception_that_cannot_be_printed_is_logged_failed(hostile: Any, api: Api) -> None:
    """Its `__str__` raising used to crash post_execute: the row stayed `running`."""
    sent = await hostile.unprintable.kiq()
    task = await _finished(api, sent.task_id)
    assert task["status"] == "failed"
    assert task["attempts"][0]["error_message"] == "<unprintable Unprintable>"
    assert "Unprintable" in task["attempts"][0]["error_traceback"]


async def test_a_base_exception_is_logged_failed(hostile: Any, api: Api) -> None:
    sent = await hostile.abort.kiq()
    task = await _finished(api, sent.task_id)
    assert task["status"] == "failed"
    assert task["attempts"][0]["error_message"] == "Abort: stop right there"


async def test_a_result_that_cannot_be_printed_is_logged_success(hostile: Any, api: Api) -> None:
    sent = await hostile.opaque.kiq()
    task = await _finished(api, sent.task_id)
    assert task["status"] == "success"
    assert task["result"].startswith("<Opaque instance at 0x")  # reprlib's own fallback


async def test_a_10_mb_result_is_stored_cut_short_and_marked(hostile: Any, api: Api) -> None:
    sent = await hostile.huge.kiq(10)
    task = await _finished(api, sent.task_id, timeout=60)
    assert task["status"] == "success"
    assert task["result"]["truncated"] is True
    assert 63_900 < len(task["result"]["preview"]) <= 64_000  # cut, after the key's `***`
    assert task["result"]["preview"].startswith('{"api_key":"***","blob":"yyy')
