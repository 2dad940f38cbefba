"""Logs a person and a machine can read, from real `tasklens serve` and `tasklens worker`
processes: time, level, logger and message on every line (text), or one JSON object per
line (`TASKLENS_LOG_FORMAT=json`); DEBUG lines only at `TASKLENS_LOG_LEVEL=DEBUG`; no token
and no `sk_live_…` key in either format."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from conftest import distributed_stack, embedded_stack
from support import OPERATOR_TOKEN, VIEWER_TOKEN, Api, Stack, wait_for

SECRET_KEY = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
PLAIN_SECRET = "correct horse battery staple"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TEXT_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) "
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<logger>\S+): (?P<message>.*)$"
)


def _json_records(log: str) -> list[dict[str, Any]]:
    """Every line of `log` as its JSON object; fails on the first line that is not one."""
    records = []
    for number, line in enumerate(log.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(record, dict), line
        assert {"time", "level", "logger", "message"} <= record.keys(), line
        assert ISO_UTC.match(record["time"]), line
        records.append(record)
    return records


def _text_records(log: str) -> list[dict[str, str]]:
    """Each record of a text log: a line with time, level and logger, then its indented
    continuation lines (a multi-line message, a traceback), if any."""
    records: list[dict[str, str]] = []
    for number, line in enumerate(log.splitlines(), 1):
        if match := TEXT_LINE.match(line):
            records.append({**match.groupdict(), "more": ""})
            continue
        assert records and line.startswith("  "), (
            f"line {number} has no time, level and logger and is not indented: {line!r}"
        )
        records[-1]["more"] += line + "\n"
    return records


def _start_api(stack: Stack) -> Api:
    api = stack.launch_api()
    api.wait_healthy(timeout=120)  # a shared 2-core machine may take long to import it all
    return api


def _has(records: list[dict[str, Any]], level: str, logger: str, message: str) -> bool:
    return any(
        r["level"] == level and r["logger"] == logger and message in r["message"] for r in records
    )


def _run_secret_and_stopped_tasks(api: Api) -> None:
    """A task that fails with a `sk_live_…` key in its error, a request with the token in
    its query, and a slow task still running when the process is stopped."""
    [failing] = api.enqueue("demo.flaky", record_id=SECRET_KEY, failure_rate=1.0)
    api.wait_task(failing, "failed")
    # a value with no telling shape, under a sensitive name (taskiq prints it at DEBUG)
    [keyed] = api.enqueue("demo.quick", n=1, api_key=PLAIN_SECRET)
    wait_for(
        lambda: api.task(keyed).get("status") in ("success", "failed"), timeout=30, what="quick"
    )
    assert httpx.get(f"{api.base_url}/health?token={OPERATOR_TOKEN}").status_code == 400
    [slow] = api.enqueue("demo.slow", steps=200, step_seconds=0.5)
    api.wait_task(slow, "running")


def _assert_no_secret(log: str) -> None:
    for secret in (SECRET_KEY, PLAIN_SECRET, OPERATOR_TOKEN, VIEWER_TOKEN):
        assert secret not in log


def test_json_logs_of_serve_and_worker(tmp_path: Path) -> None:
    stack: Stack = distributed_stack(tmp_path)
    stack.env["TASKLENS_LOG_FORMAT"] = "json"
    try:
        api = _start_api(stack)
        worker = stack.start_worker(extra_args=["--grace", "0.5"], timeout=120)
        _run_secret_and_stopped_tasks(api)
        worker.stop()
        api.process.stop()
    finally:
        stack.stop_all()

    served = _json_records(api.process.log())
    assert _has(served, "INFO", "tasklens.announce", "tasklens: distributed mode, database")
    assert _has(served, "INFO", "uvicorn.access", '"GET /health?token=*** HTTP/1.1" 400')
    worked = _json_records(worker.log())
    assert _has(worked, "INFO", "taskiq.receiver.receiver", "Listening started")
    # TaskLens's own warning: the slow task handed back to the queue on SIGTERM
    assert _has(worked, "WARNING", "tasklens.broker", "handed back 1 unfinished messages")
    [failure] = [r for r in worked if "DemoFailure" in r.get("exc_info", "")]
    assert failure["level"] == "ERROR" and isinstance(failure["exc_info"], str)
    assert "DemoFailure: could not import record ***" in failure["exc_info"]
    for records in (served, worked):  # the default level is INFO
        assert not [r for r in records if r["level"] == "DEBUG"]
    _assert_no_secret(api.process.log())
    _assert_no_secret(worker.log())


def test_text_logs_of_the_embedded_server_at_debug(tmp_path: Path) -> None:
    stack = embedded_stack(tmp_path)
    stack.env.update(TASKLENS_LOG_LEVEL="DEBUG", TASKLENS_SHUTDOWN_GRACE_SECONDS="0.5")
    try:
        api = _start_api(stack)
        _run_secret_and_stopped_tasks(api)
        api.process.stop()
    finally:
        stack.stop_all()

    log = api.process.log()
    records = _text_records(log)
    assert _has(records, "INFO", "tasklens.announce", "tasklens: embedded mode, database")
    assert _has(records, "INFO", "uvicorn.access", '"GET /health?token=*** HTTP/1.1" 400')
    # TaskLens's own warning: SIGTERM while the slow task runs
    assert _has(records, "WARNING", "tasklens.broker", "waiting up to 0.5s for 1 running tasks")
    assert [r for r in records if r["level"] == "DEBUG"]
    [failure] = [r for r in records if "DemoFailure" in r["more"]]
    assert failure["level"] == "ERROR"
    assert "\n  Traceback (most recent call last):\n" in f"\n{failure['more']}"
    assert "DemoFailure: could not import record ***" in failure["more"]
    _assert_no_secret(log)


def test_text_logs_of_serve_and_worker_at_info(tmp_path: Path) -> None:
    stack = distributed_stack(tmp_path)
    try:
        api = _start_api(stack)
        worker = stack.start_worker(timeout=120)
        [task] = api.enqueue("demo.quick", n=3)
        api.wait_task(task, "success")
        worker.stop()
        api.process.stop()
    finally:
        stack.stop_all()
    served, worked = _text_records(api.process.log()), _text_records(worker.log())
    assert _has(served, "INFO", "tasklens.announce", "tasklens: distributed mode, database")
    assert _has(served, "INFO", "uvicorn.access", '"POST /api/v1/demo HTTP/1.1" 202')
    assert _has(worked, "INFO", "taskiq.receiver.receiver", "Executing task demo.quick")
    for records in (served, worked):
        assert not [r for r in records if r["level"] == "DEBUG"]
