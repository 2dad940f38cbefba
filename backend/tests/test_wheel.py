"""The built wheel, installed the two ways a user installs it, in fresh virtualenvs outside the
checkout: `tasklens[server]` serves the dashboard; plain `tasklens` logs a worker's tasks
without the server's libraries."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import Process, free_port, wait_for

BACKEND = Path(__file__).resolve().parents[1]
DIST = BACKEND.parent / "frontend" / "dist"

pytestmark = pytest.mark.timeout(900)


def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.fail("uv is not on PATH: run the tests through ./dev (it puts .tools/bin first)")
    return found


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`uv build`: the sdist first, then the wheel from the sdist, as a release is built."""
    out = tmp_path_factory.mktemp("dist")
    run(uv(), "build", "--out-dir", out, cwd=BACKEND)
    (built,) = out.glob("tasklens-*.whl")
    return built


def fresh_venv(uv_path: str, where: Path, requirement: str) -> Path:
    """A virtualenv of its own (outside the checkout), holding only `requirement`."""
    run(uv_path, "venv", "--python", sys.executable, where, cwd=where.parent)
    python = where / "bin" / "python"
    run(uv_path, "pip", "install", "--python", python, requirement, cwd=where.parent)
    return python


def clean_env(**extra: str) -> dict[str, str]:
    """No TASKLENS_* of the test run, and no PYTHONPATH pointing into the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLENS_")}
    env.pop("PYTHONPATH", None)
    return {**env, **extra}


@pytest.fixture
def served(wheel: Path, tmp_path: Path) -> Iterator[str]:
    python = fresh_venv(uv(), tmp_path / "server-env", f"{wheel}[server]")
    home = tmp_path / "home"
    home.mkdir()
    port = free_port()
    log_path = home / "serve.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            [python.parent / "tasklens", "serve"],
            cwd=home,
            env=clean_env(TASKLENS_HOST="127.0.0.1", TASKLENS_PORT=str(port)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    process = Process("serve", popen, log_path)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert popen.poll() is None, f"tasklens serve exited:\n{process.log()}"
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, timeout=120, what="the installed tasklens serve to answer /health")
        yield base
    finally:
        process.stop()


def test_the_server_install_serves_the_dashboard_outside_the_checkout(served: str) -> None:
    page = httpx.get(f"{served}/monitoring", timeout=10)
    assert page.status_code == 200
    assert "has not been built yet" not in page.text
    assert page.text == (DIST / "index.html").read_text()
    scripts = re.findall(r'src="(/assets/[^"]+\.js)"', page.text)
    assert scripts, page.text
    script = httpx.get(f"{served}{scripts[0]}", timeout=10)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert script.content == (DIST / scripts[0].lstrip("/")).read_bytes()


SHOP = textwrap.dedent(
    """
    import asyncio
    import sys

    from taskiq import InMemoryBroker

    from tasklens.middleware import TaskLensMiddleware

    broker = InMemoryBroker().with_middlewares(TaskLensMiddleware(database_url=sys.argv[1]))


    @broker.task(task_name="shop.add")
    async def add(a: int, b: int) -> int:
        return a + b


    async def main() -> None:
        await broker.startup()
        task = await add.kiq(2, 3)
        result = await task.wait_result(timeout=30)
        await broker.shutdown()  # flushes the log
        print("result", result.return_value)


    asyncio.run(main())
    """
)


def test_the_base_install_logs_a_worker_without_the_server(wheel: Path, tmp_path: Path) -> None:
    python = fresh_venv(uv(), tmp_path / "base-env", str(wheel))
    home = tmp_path / "home"
    home.mkdir()
    env = clean_env()
    no_server = subprocess.run(
        [python, "-c", "import fastapi"], cwd=home, env=env, capture_output=True, check=False
    )
    assert no_server.returncode != 0, "the base install pulled in FastAPI"

    database = home / "shop.db"
    url = f"sqlite+aiosqlite:///{database}"
    migrated = run(
        python.parent / "tasklens", "migrate", cwd=home, env={**env, "TASKLENS_DATABASE_URL": url}
    )
    assert "is at head" in migrated
    refused = subprocess.run(
        [python.parent / "tasklens", "serve"], cwd=home, env=env, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert 'needs the server extra: pip install "tasklens[server]"' in refused.stderr

    (home / "shop.py").write_text(SHOP)
    ran = subprocess.run(
        [python, "shop.py", url], cwd=home, env=env, capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "result 5" in ran.stdout
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT task_name, status FROM tasklens_task_execution_logs").fetchall()
    assert rows == [("shop.add", "success")]
