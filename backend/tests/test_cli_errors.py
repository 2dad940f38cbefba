"""A command that meets an unreachable database or Redis, or a database nobody migrated,
says so in one line naming where, never with a traceback and never with a password."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support import TASKLENS, free_port

from tasklens.cli_errors import safe_url

SECRET = "s3cret"


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TASKLENS, *args],
        env={**os.environ, "TASKLENS_API_TOKENS": "", "TASKLENS_REDIS_URL": "", **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line(done: subprocess.CompletedProcess[str], starts: str) -> str:
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and SECRET not in output, output
    [line] = output.strip().splitlines()
    assert line.startswith(starts), line
    return line


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+asyncpg://u:{SECRET}@127.0.0.1:{{port}}/x",
        f"postgresql+asyncpg://u@127.0.0.1:{{port}}/x?password={SECRET}",
    ],
    ids=["userinfo", "query"],
)
@pytest.mark.parametrize(
    "command",
    [["migrate"], ["token", "--name", "x"], ["token", "--list"], ["demo"]],
    ids=" ".join,
)
def test_an_unreachable_database_is_one_line(tmp_path: Path, url: str, command: list[str]) -> None:
    port = free_port()
    done = _run(command, {"TASKLENS_DATABASE_URL": url.format(port=port)}, tmp_path)
    line = _one_line(done, "tasklens: cannot reach the database (postgresql+asyncpg://u")
    assert f"127.0.0.1:{port}/x" in line and "***" in line


@pytest.mark.parametrize(
    "url",
    [f"redis://:{SECRET}@127.0.0.1:{{port}}/0", f"redis://127.0.0.1:{{port}}/0?password={SECRET}"],
    ids=["userinfo", "query"],
)
@pytest.mark.parametrize("command", ["serve", "worker", "scheduler"])
def test_redis_unreachable_is_one_line(tmp_path: Path, url: str, command: str) -> None:
    port = free_port()
    schedules = tmp_path / "schedules.json"
    schedules.write_text('{"schedules": []}')
    env = {
        "TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/t.db",
        "TASKLENS_REDIS_URL": url.format(port=port),
        "TASKLENS_PORT": str(free_port()),
        "TASKLENS_SCHEDULES_FILE": str(schedules),
    }
    line = _one_line(_run([command], env, tmp_path), "tasklens: cannot reach Redis (redis://")
    assert f"127.0.0.1:{port}/0" in line and "***" in line


def test_a_database_nobody_migrated_says_run_migrate(tmp_path: Path, postgres_url: str) -> None:
    env = {"TASKLENS_DATABASE_URL": postgres_url}
    assert _run(["migrate", "--downgrade", "base"], env, tmp_path).returncode == 0
    line = _one_line(_run(["token", "--name", "x"], env, tmp_path), "tasklens: the database")
    assert line.endswith("has no TaskLens tables (" + postgres_url + "): run `tasklens migrate`")


def test_token_on_a_fresh_sqlite_file_migrates_it_first(tmp_path: Path) -> None:
    env = {"TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/fresh.db"}
    done = _run(["token", "--name", "first"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip()) >= 16 and done.stderr == ""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"postgresql+asyncpg://u:{SECRET}@h:5432/x", "postgresql+asyncpg://u:***@h:5432/x"),
        (
            f"postgresql+asyncpg://u@h/x?ssl=require&password={SECRET}",
            "postgresql+asyncpg://u@h/x?ssl=require&password=***",
        ),
        (f"redis://:{SECRET}@h:6379/0", "redis://:***@h:6379/0"),
        (
            f"unix:///run/redis.sock?password={SECRET}&db=2",
            "unix:///run/redis.sock?password=***&db=2",
        ),
        ("sqlite+aiosqlite:///./data/tasklens.db", "sqlite+aiosqlite:///./data/tasklens.db"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_an_unwritable_output_file_is_named_not_blamed_on_the_database(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "openapi.json"
    done = _run(["openapi", "--output", str(target)], {}, tmp_path)
    assert _one_line(done, "tasklens: ") == f"tasklens: No such file or directory: {target}"
