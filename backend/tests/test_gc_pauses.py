"""The API process `tasklens serve` runs freezes what startup built and runs full collector
passes less often (gc_pauses.py); an app built any other way (a test's) leaves the collector
as it was. A worker with TaskLensMiddleware takes one full pass once started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tasklens.gc_pauses import MIDDLE_PASSES_PER_FULL_PASS

PROBE = """
import asyncio, gc, json, sys
from tasklens.api.app import create_app
from tasklens.settings import Settings

async def main() -> None:
    settings = Settings(
        database_url="sqlite+aiosqlite:///" + sys.argv[1], api_tokens=[], redis_url=None
    )
    app = create_app(settings, settle_gc=sys.argv[2] == "served")
    async with app.router.lifespan_context(app):
        print(json.dumps({"frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold()}))

asyncio.run(main())
"""


def _probe(script: str, tmp_path: Path, how: str) -> dict[str, object]:
    """What `script` prints last, run in a process of its own with a database file and `how`."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / f"{how}.db"), how],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _collector_after_startup(tmp_path: Path, how: str) -> dict[str, object]:
    return _probe(PROBE, tmp_path, how)


def test_the_served_app_freezes_startup_and_runs_full_passes_less_often(
    tmp_path: Path,
) -> None:
    served = _collector_after_startup(tmp_path, "served")
    assert served["thresholds"] == [700, 10, MIDDLE_PASSES_PER_FULL_PASS]
    frozen = served["frozen"]
    assert isinstance(frozen, int) and frozen > 10_000  # modules, classes, the app
    other = _collector_after_startup(tmp_path, "test")
    assert other == {"frozen": 0, "thresholds": [700, 10, 10]}


WORKER_PROBE = """
import asyncio, gc, json, sys
from taskiq import InMemoryBroker
from tasklens.middleware import TaskLensMiddleware

async def main() -> None:
    broker = InMemoryBroker()
    broker.is_worker_process = sys.argv[2] == "worker"
    broker.add_middlewares(TaskLensMiddleware(database_url="sqlite+aiosqlite:///" + sys.argv[1]))
    gc.disable()  # no pass of the collector's own: only those startup asks for are counted
    before = gc.get_stats()[2]["collections"]
    await broker.startup()
    full = gc.get_stats()[2]["collections"] - before
    await broker.shutdown()
    print(json.dumps({"full_passes": full}))

asyncio.run(main())
"""


def _full_passes_in_startup(tmp_path: Path, how: str) -> int:
    passes = _probe(WORKER_PROBE, tmp_path, how)["full_passes"]
    assert isinstance(passes, int)
    return passes


def test_a_worker_takes_its_full_collector_pass_at_startup_not_under_load(
    tmp_path: Path,
) -> None:
    """TaskLensMiddleware in a worker process collects once its startup is done; in the app
    that only sends tasks (a web server's) it leaves the collector alone."""
    assert _full_passes_in_startup(tmp_path, "worker") == 1
    assert _full_passes_in_startup(tmp_path, "client") == 0
