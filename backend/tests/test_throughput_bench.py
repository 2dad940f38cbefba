"""`bench throughput` at a small scale against real workers: each arm drains its tasks (the
logged arm until every row is `success`), and with `--tries` a run the hypervisor stole more
than `--max-steal` from is run again and the least stolen try kept. Counts only: the speed
is the benchmark's."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from conftest import fresh_postgres, fresh_redis

from benchmarks import throughput

pytestmark = pytest.mark.system

TASKS = 300


def test_a_run_stolen_from_is_run_again_and_the_least_stolen_try_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A limit below zero: every try counts as stolen from, so each run is tried twice.
    figures = asyncio.run(
        throughput.run(
            fresh_redis(),
            fresh_postgres(),
            TASKS,
            rounds=1,
            workers=1,
            arms=("raw", "middleware"),
            warmup=False,
            max_steal=-1.0,
            tries=2,
        )
    )

    printed = capsys.readouterr().out.splitlines()
    for arm in ("raw", "middleware"):
        tries = [line for line in printed if f"round 1 {throughput.LABELS[arm]}:" in line]
        assert len(tries) == 2
        assert tries[0].endswith("(steal above -100.0%: again)")
        assert tries[1].endswith("(steal above -100.0%: the least stolen kept)")
        assert figures[f"{arm}_tasks_per_s"] > 0
        assert figures[f"{arm}_cpu_us_per_task"] > 0
        assert 0 <= figures[f"{arm}_steal"] <= figures[f"first_{arm}_steal"] <= 1
    assert figures["runs"] == figures["runs_stolen"] == figures["runs_kept_stolen"] == 2
