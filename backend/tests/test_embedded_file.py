"""The embedded mode's SQLite file: one server per file, a missing file is not silently
replaced by an empty one, and /health sees a file removed, replaced or unwritable. Real
`tasklens serve` processes on a real file."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import API_TOKENS, Api, Stack, wait_for

from tasklens.reaper import LOST_ERROR


def database_of(stack: Stack) -> Path:
    return Path(stack.env["TASKLENS_DATABASE_URL"].split(":///", 1)[1])


def exit_code(api: Api, timeout: float = 30) -> int:
    try:
        return api.process.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{api.process.name} did not exit:\n{api.process.log()}") from None


def health(api: Api) -> tuple[int, dict[str, str]]:
    response = httpx.get(api.base_url + "/health", timeout=10)
    return response.status_code, response.json()


def wait_health(api: Api, database: str, timeout: float = 30) -> None:
    seen: list[tuple[int, dict[str, str]]] = []

    def reached() -> bool:
        seen[:] = [health(api)]
        return seen[0][1]["database"] == database

    wait_for(reached, timeout=timeout, what=f"/health database {database}")
    code, body = seen[0]
    assert (code, body["status"]) == ((200, "ok") if database == "ok" else (503, "degraded"))


def test_a_second_server_on_the_same_file_is_refused_and_the_first_keeps_its_tasks(
    embedded: Stack,
) -> None:
    first = embedded.start_api()
    [task_id] = first.enqueue("demo.slow", steps=60, step_seconds=0.5)
    first.wait_task(task_id, "running", timeout=20)

    second = embedded.launch_api("second")
    assert exit_code(second) == 2
    database = database_of(embedded)
    assert f"tasklens: {database} is in use by another TaskLens process" in second.process.log()
    assert f"pid {first.process.popen.pid}" in second.process.log()

    time.sleep(7)  # longer than a reaper pass (5 s ± 20 %): the second one ran none
    assert first.task(task_id)["status"] == "running"

    first.process.kill_hard()  # a crash releases the lock with the process
    third = embedded.start_api("third")
    lost = third.wait_task(task_id, "failed", timeout=20)["attempts"][-1]
    assert lost["error_message"] == LOST_ERROR


def test_a_start_where_the_database_went_missing_refuses_unless_told_to_begin_anew(
    embedded: Stack,
) -> None:
    api = embedded.start_api()
    [task_id] = api.enqueue("demo.quick", n=1)
    api.wait_task(task_id, "success")
    api.process.stop()
    database = database_of(embedded)
    for path in database.parent.glob(database.name + "*"):
        if not path.name.endswith(".lock"):
            path.unlink()

    refused = embedded.launch_api("refused")
    assert exit_code(refused) == 2
    log = refused.process.log()
    assert f"tasklens: {database} is missing, but a TaskLens database was created there" in log
    assert "--new-database" in log
    assert not database.exists()  # nothing created in its place

    anew = embedded.launch_api("anew", None, "--new-database")
    anew.wait_healthy()
    assert anew.task(task_id) == {}  # an empty database, as asked
    anew.process.stop()
    embedded.start_api("after").process.stop()  # the new file is the one remembered now


def test_health_reports_the_database_file_removed_or_replaced(embedded: Stack) -> None:
    api = embedded.start_api()
    wait_health(api, "ok")
    database = database_of(embedded)

    copy = database.with_name("copy.db")
    shutil.copy(database, copy)
    os.replace(copy, database)  # same name, another file: writes go to the old one
    wait_health(api, "replaced")

    database.unlink()
    wait_health(api, "missing")


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Writes to `path` refused, even to root (immutable), as on a read-only mount."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file unwritable")
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_health_reports_a_database_file_that_no_longer_takes_writes(embedded: Stack) -> None:
    api = embedded.start_api()
    wait_health(api, "ok")
    with read_only(database_of(embedded)):
        wait_health(api, "unwritable")
    wait_health(api, "ok")


def test_an_enqueue_the_log_does_not_take_is_a_503_and_its_tasks_are_logged_later(
    embedded: Stack,
) -> None:
    """A 202 promises the rows are in the log; when the file refuses writes the answer is a
    503 that says the tasks are queued, and they are logged once it takes writes again."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("needs root and chattr to make an open file refuse writes")
    api = embedded.start_api()
    database = database_of(embedded)
    wal = database.with_name(database.name + "-wal")
    subprocess.run(["chattr", "+i", str(wal)], check=True)  # even open descriptors: EPERM
    try:
        with api.client() as client:
            response = client.post(
                "/api/v1/demo", json={"task": "demo.quick", "count": 5, "params": {"n": 1}}
            )
        assert response.status_code == 503, response.text
        assert "queued" in response.json()["error"]
        assert health(api)[1]["database"] == "unwritable"
    finally:
        subprocess.run(["chattr", "-i", str(wal)], check=True)

    def logged() -> bool:
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
            [[count]] = conn.execute(
                "SELECT count(*) FROM tasklens_task_execution_logs WHERE status = 'success'"
            )
        return bool(count == 5)

    wait_for(logged, timeout=60, what="the 5 queued tasks logged once the file takes writes")


def test_a_second_embedded_server_on_one_postgresql_database_is_refused(
    tmp_path: Path, postgres_url: str
) -> None:
    """Without Redis a PostgreSQL log is embedded too, with the same rule: a session
    advisory lock instead of the file lock."""
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": postgres_url,
            "TASKLENS_REDIS_URL": "",
            "TASKLENS_API_TOKENS": API_TOKENS,
        },
    )
    try:
        first = stack.start_api()
        [task_id] = first.enqueue("demo.slow", steps=60, step_seconds=0.5)
        first.wait_task(task_id, "running", timeout=20)
        second = stack.launch_api("second")
        assert exit_code(second) == 2
        assert "is in use by another embedded TaskLens server" in second.process.log()
        assert "Traceback" not in second.process.log()
        time.sleep(7)  # longer than a reaper pass
        assert first.task(task_id)["status"] == "running"
    finally:
        stack.stop_all()


def test_a_database_path_that_cannot_hold_the_lock_stops_startup_in_one_line(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{blocker}/tasklens.db",
            "TASKLENS_REDIS_URL": "",
            "TASKLENS_API_TOKENS": API_TOKENS,
        },
    )
    api = stack.launch_api()
    assert exit_code(api) == 2
    log = api.process.log()
    assert f"tasklens: cannot open the lock file {blocker}/tasklens.db.lock: " in log
    assert "Traceback" not in log
