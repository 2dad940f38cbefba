"""`benchmarks.worker_cpu` at a small scale against real workers: the probe finds TaskLens's
pieces in the middleware's worker, nested as the code calls them, and none in stock's.
Counts and shapes only: the figures are the benchmark's."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from conftest import fresh_postgres, fresh_redis

from benchmarks import worker_cpu

pytestmark = pytest.mark.system

TASKS = 300


def test_the_probe_splits_the_middleware_workers_cpu_and_finds_none_of_it_in_stock(
    tmp_path: Path,
) -> None:
    redis_url, database_url = fresh_redis(), fresh_postgres()

    async def both() -> tuple[dict[str, float], dict[str, float]]:
        out = tmp_path / "probe"
        stock = await worker_cpu.probed_run(TASKS, "raw", redis_url, database_url, out)
        logged = await worker_cpu.probed_run(TASKS, "middleware", redis_url, database_url, out)
        return stock, logged

    stock, logged = asyncio.run(both())

    assert not [piece for piece in stock if piece.startswith(("hook:", "recorder:"))]
    loop = logged["recorder: its loop, all"]
    assert 0 < logged["recorder: rows (JSON, asyncpg)"] <= logged["recorder: rows and acks"] <= loop
    assert logged["recorder: live events (JSON, XADD)"] > 0
    assert logged["recorder: live events (JSON, XADD)"] <= logged["recorder: merge and live events"]
    hooks = logged["hook: pre_execute"] + logged["hook: post_execute"]
    assert 0 < hooks + loop < logged[worker_cpu.WHOLE]
    assert stock[worker_cpu.WHOLE] > 0
