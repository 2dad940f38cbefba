"""`bench throughput` at a small scale against real workers: each arm drains its tasks (the
logged arms until every row is `success`), and with `--tries` a run the hypervisor stole more
than `--max-steal` from is run again and the least stolen try kept. The `beside` arm's load
logs every task a stock worker ran, as the middleware would have. Counts only: the speed
is the benchmark's."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from conftest import fresh_postgres, fresh_redis

from benchmarks import __main__ as bench_cli
from benchmarks import throughput
from tasklens.tracking.database import connect_postgres
from tasklens.tracking.redis_keys import EVENTS_STREAM

pytestmark = pytest.mark.system

TASKS = 300


def test_a_run_stolen_from_is_run_again_and_the_least_stolen_try_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A limit below zero: every try counts as stolen from, so each run is tried twice.
    arms = ("raw", "hooks", "beside", "middleware")  # as `--arms raw,hooks,beside,middleware`
    figures = asyncio.run(
        throughput.run(
            fresh_redis(),
            fresh_postgres(),
            TASKS,
            rounds=1,
            workers=1,
            arms=arms,
            warmup=False,
            max_steal=-1.0,
            tries=2,
        )
    )

    printed = capsys.readouterr().out.splitlines()
    for arm in arms:
        tries = [line for line in printed if f"round 1 {throughput.LABELS[arm]}:" in line]
        assert len(tries) == 2
        assert tries[0].endswith("(steal above -100.0%: again)")
        assert tries[1].endswith("(steal above -100.0%: the least stolen kept)")
        assert figures[f"{arm}_tasks_per_s"] > 0
        assert figures[f"{arm}_cpu_us_per_task"] > 0
        assert 0 <= figures[f"{arm}_steal"] <= figures[f"first_{arm}_steal"] <= 1
    assert figures["runs"] == figures["runs_stolen"] == figures["runs_kept_stolen"] == 4
    for ratio in ("ratio", "paired_ratio", "cpu_ratio", "paired_cpu_ratio"):
        assert figures[f"middleware_beside_{ratio}"] > 0

    # What the command prints of these arms: target 1's lines, the split, no target 2 (its
    # arm did not run), and each arm's first try against stock.
    outcome = bench_cli.BENCHMARKS["throughput"].outcome(argparse.Namespace(tries=2), figures)
    assert [line for line in outcome if line.startswith("overhead: ")] != []
    assert [line for line in outcome if "tasklens worker" in line] == []
    (split,) = [line for line in outcome if line.startswith("the overhead split, against stock")]
    assert f"CPU {figures['hooks_cpu_ratio']:.3f}" in split
    assert f"{figures['hooks_cpu_us_per_task']:.0f} µs a task" in split
    (first,) = [line for line in outcome if line.startswith("first tries only")]
    for arm in ("hooks", "beside", "middleware"):
        assert (
            f"{throughput.LABELS[arm].strip()} tasks/s {figures[f'first_{arm}_ratio']:.3f}" in first
        )


def test_beside_a_stock_worker_the_log_gets_every_row_and_event_the_middleware_would_write() -> (
    None
):
    redis_url, database_url = fresh_redis(), fresh_postgres()

    run = asyncio.run(throughput.one_run(TASKS, "beside", redis_url, database_url, 1))

    assert run.seconds >= run.drained_seconds > 0
    rows, events = asyncio.run(_log_and_events(redis_url, database_url))
    # each task's `pending` row (sent through the middleware) became its `success`: no other row
    assert rows == [("success", "bench", TASKS)]
    # the sender's `pending` events, then one `success` a task (the ids: each event's 4th value)
    assert [event[1] for event in events] == ["pending"] * TASKS + ["success"] * TASKS
    assert len({event[3] for event in events[TASKS:]}) == TASKS


async def _log_and_events(
    redis_url: str, database_url: str
) -> tuple[list[tuple[str, str, int]], list[list[object]]]:
    pg = await connect_postgres(database_url)
    try:
        rows = await pg.fetch(
            "SELECT status, queue, count(*) FROM task_execution_logs "
            "WHERE worker IS NOT NULL AND completed_at IS NOT NULL GROUP BY status, queue"
        )
    finally:
        await pg.close()
    async with Redis.from_url(redis_url) as redis:
        entries: Any = await redis.xrange(EVENTS_STREAM)
    events = [event for _, fields in entries for event in orjson.loads(fields[b"c"])]
    return [(r["status"], r["queue"], r["count"]) for r in rows], events
