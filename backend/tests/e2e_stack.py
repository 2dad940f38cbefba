"""A whole distributed TaskLens for the browser tests (frontend/e2e): PostgreSQL and Redis
databases of its own, an API and a worker, a git repository to analyse and the GitHub
replay server. Prints one JSON line describing it, then obeys commands on stdin:
`restart-api` (same port, as after a deploy) and `stop`. With `TASKLENS_E2E_ALERTS=1` the
API evaluates one alert rule every second: `flaky-failing`, more than half of demo.flaky's
runs of the last minute failed (at least 3). With `TASKLENS_E2E_DATABASE=<name>` it runs on
that PostgreSQL database as it is (created and migrated if need be, never emptied): the
dashboard measurement's tens of millions of generated rows are kept between runs.

Run: `backend/.venv/bin/python backend/tests/e2e_stack.py <workdir>`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import asyncpg
import httpx

os.environ.setdefault("TASKLENS_TEST_DB_NAME", "tasklens_e2e")
os.environ.setdefault("TASKLENS_TEST_REDIS_DB", "8")

from conftest import PG_ADMIN_URL, fresh_postgres, fresh_redis, pg_url
from git_repo import make_repository
from github_replay import replay_server
from support import API_TOKENS, OPERATOR_TOKEN, VIEWER_TOKEN, Stack

from tasklens import migrate


async def _create_if_missing(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def kept_postgres(name: str) -> str:
    """The database `name` with its rows, migrated to head: the tests' own is emptied."""
    asyncio.run(_create_if_missing(name))
    url = pg_url(name)
    migrate.upgrade(url)
    return url


def main(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    repo = make_repository(workdir / "repos" / "app")
    kept = os.environ.get("TASKLENS_E2E_DATABASE")
    with replay_server("github_octo_dev.json", latency=0.4) as github:
        # The recording opens octo-dev's search with a rate-limit answer (the backend tests'
        # case); play it off so the browser sees an ordinary run.
        httpx.get(f"{github.base_url}/search/issues", params={"q": "author:octo-dev type:pr"})
        stack = Stack(
            workdir,
            {
                "TASKLENS_DATABASE_URL": kept_postgres(kept) if kept else fresh_postgres(),
                "TASKLENS_REDIS_URL": fresh_redis(),
                "TASKLENS_API_TOKENS": API_TOKENS,
                "TASKLENS_REPO_ROOTS": str(workdir / "repos"),
                "TASKLENS_GITHUB_API_URL": github.base_url,
                "TASKLENS_REFRESH_RATE_LIMIT": "2/300",
                "TASKLENS_MAX_RETRIES": "1",
            },
        )
        if os.environ.get("TASKLENS_E2E_ALERTS") == "1":
            rule = {"name": "flaky-failing", "kind": "failure_rate", "task_name": "demo.flaky",
                    "window_minutes": 1, "threshold": 0.5, "min_runs": 3}  # fmt: skip
            (workdir / "alerts.json").write_text(json.dumps({"rules": [rule]}))
            stack.env["TASKLENS_ALERTS_FILE"] = str(workdir / "alerts.json")
            stack.env["TASKLENS_ALERTS_INTERVAL_SECONDS"] = "1"
        try:
            api = stack.start_api()
            stack.start_worker()
            port = int(api.base_url.rsplit(":", 1)[1])
            description = {
                "url": api.base_url,
                "operator": OPERATOR_TOKEN,
                "viewer": VIEWER_TOKEN,
                "repository": str(repo),
                "github_user": "octo-dev",
                "database_url": stack.env["TASKLENS_DATABASE_URL"],
            }
            print(json.dumps(description), flush=True)
            for line in sys.stdin:
                command = line.strip()
                if command == "restart-api":
                    api.process.stop()
                    stack.processes.remove(api.process)
                    api = stack.start_api(port=port)
                    print("ok", flush=True)
                elif command == "stop":
                    break
        finally:
            stack.stop_all()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
