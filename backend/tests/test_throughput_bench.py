"""`bench throughput` at a small scale against real workers: each arm drains its tasks (the
logged arms until every row is `success`), and with `--tries` a run the hypervisor stole more
than `--max-steal` from is run again and the least stolen try kept. The `beside` arm's load
logs every task a stock worker ran, as the middleware would have. Counts only: the speed
is the benchmark's."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is no package here

from conftest import fresh_postgres, fresh_redis

from benchmarks import throughput
from tasklens.tracking.database import connect_postgres
from tasklens.tracking.redis_keys import EVENTS_STREAM

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
            arms=("raw", "beside", "middleware"),
            warmup=False,
            max_steal=-1.0,
            tries=2,
        )
    )

    printed = capsys.readouterr().out.splitlines()
    for arm in ("raw", "beside", "middleware"):
        tries = [line for line in printed if f"round 1 {throughput.LABELS[arm]}:" in line]
        assert len(tries) == 2
        assert tries[0].endswith("(steal above -100.0%: again)")
        assert tries[1].endswith("(steal above -100.0%: the least stolen kept)")
        assert figures[f"{arm}_tasks_per_s"] > 0
        assert figures[f"{arm}_cpu_us_per_task"] > 0
        assert 0 <= figures[f"{arm}_steal"] <= figures[f"first_{arm}_steal"] <= 1
    assert figures["runs"] == figures["runs_stolen"] == figures["runs_kept_stolen"] == 3
    for ratio in ("ratio", "paired_ratio", "cpu_ratio", "paired_cpu_ratio"):
        assert figures[f"middleware_beside_{ratio}"] > 0


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
