"""The library a TaskIQ app imports (`tasklens.tracking`, entered by `tasklens.middleware`)
imports nothing of the server: the import contract in pyproject.toml, and a worker-like
process that tracks a task with it, once where the server's web stack cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tasklens.tracking.database import connect_postgres

BACKEND = Path(__file__).parent.parent
SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "httpx")

# A TaskIQ app with TaskLens's middleware and progress reporting, run to the end of one task.
# With `blocked`, importing any of SERVER_PACKAGES fails, as in an environment without them.
APP = """
import asyncio, importlib.abc, json, sys

BLOCKED = {blocked}
SERVER_PACKAGES = {server_packages}


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in SERVER_PACKAGES:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


if BLOCKED:
    sys.meta_path.insert(0, NotInstalled())

from taskiq import InMemoryBroker, TaskiqDepends

from tasklens.middleware import TaskLensMiddleware
from tasklens.tracking.progress import Progress

broker = InMemoryBroker().with_middlewares(TaskLensMiddleware(database_url={database_url!r}))


@broker.task(task_name="library.double")
async def double(x: int, progress: Progress = TaskiqDepends()) -> int:
    progress(0.5, "halfway")
    return 2 * x


async def main() -> None:
    await broker.startup()
    sent = await double.kiq(21)
    result = await sent.wait_result(timeout=60)
    await broker.shutdown()  # the recorder writes what it holds before it stops
    print(json.dumps({{"task_id": sent.task_id, "result": result.return_value,
                      "modules": sorted(sys.modules)}}))


asyncio.run(main())
"""


def test_the_import_contract_is_kept() -> None:
    """`lint-imports` (import-linter) with the contract in pyproject.toml: CI fails when
    anything under tasklens.tracking imports the server, directly or through another module."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    checked = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=BACKEND, capture_output=True, text=True, timeout=300
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 kept, 0 broken" in checked.stdout


@pytest.mark.parametrize("blocked", [False, True], ids=["installed", "not-installed"])
async def test_an_app_tracks_its_tasks_with_the_library_alone(
    postgres_url: str, blocked: bool
) -> None:
    app = APP.format(blocked=blocked, server_packages=SERVER_PACKAGES, database_url=postgres_url)
    ran = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(app)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen["result"] == 42
    modules = set(seen["modules"])
    assert "tasklens.tracking.middleware" in modules
    server = {
        name
        for name in modules
        if name.startswith("tasklens.")
        and not name.startswith("tasklens.tracking")
        and name != "tasklens.middleware"
    }
    assert server == set()
    # Installed, fastapi is imported by taskiq itself (taskiq_dependencies' optional support
    # for fastapi's Depends); the not-installed run shows TaskLens needs none of them.
    assert {"uvicorn", "httpx"} & modules == set()
    if blocked:
        assert set(SERVER_PACKAGES) & modules == set()

    connection = await connect_postgres(postgres_url)
    try:
        row = await connection.fetchrow(
            "SELECT status, task_name, result, progress FROM task_execution_logs "
            "WHERE task_id = $1",
            seen["task_id"],
        )
    finally:
        await connection.close()
    assert row is not None
    assert (row["status"], row["task_name"]) == ("success", "library.double")
    assert json.loads(row["result"]) == 42
    assert row["progress"] == 1.0
