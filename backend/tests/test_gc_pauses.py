"""The API process `tasklens serve` runs freezes what startup built and runs full collector
passes less often (gc_pauses.py); an app built any other way (a test's) leaves the collector
as it was."""

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


def _collector_after_startup(tmp_path: Path, how: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / f"{how}.db"), how],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_served_app_freezes_startup_and_runs_full_passes_less_often(
    tmp_path: Path,
) -> None:
    served = _collector_after_startup(tmp_path, "served")
    assert served["thresholds"] == [700, 10, MIDDLE_PASSES_PER_FULL_PASS]
    frozen = served["frozen"]
    assert isinstance(frozen, int) and frozen > 10_000  # modules, classes, the app
    other = _collector_after_startup(tmp_path, "test")
    assert other == {"frozen": 0, "thresholds": [700, 10, 10]}
