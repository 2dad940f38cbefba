"""One reaper per fleet: with several processes on one Redis, one holds the lease and runs
the fleet-wide pass; when it dies another takes over within the lease's TTL. Real Redis,
real PostgreSQL, short intervals."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from support import fetch_log_rows

from tasklens.reaper import LOST_ERROR, Reaper
from tasklens.tracking.database import connect_postgres, create_engine

INTERVAL = 0.5  # the lease lives three intervals: 1.5 s


async def _insert(database_url: str, rows: list[tuple[str, int, str, str]]) -> None:
    """(task id, attempt, status, age of its last write as an SQL interval) rows."""
    conn = await connect_postgres(database_url)
    try:
        await conn.executemany(
            "INSERT INTO task_execution_logs (task_id, attempt, task_name, status, queue, "
            "created_at, updated_at) VALUES ($1, $2, 'demo.quick', $3, 'tasklens', "
            "now() - $4::text::interval, now() - $4::text::interval)",
            rows,
        )
    finally:
        await conn.close()


async def _statuses(database_url: str) -> dict[tuple[str, int], tuple[str, str | None]]:
    rows = await fetch_log_rows(database_url, "task_id, attempt, status, error_message")
    return {(r["task_id"], r["attempt"]): (r["status"], r["error_message"]) for r in rows}


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_one_reaper_per_fleet_runs_the_pass_and_the_next_takes_over_when_it_dies(
    postgres_url: str, redis_url: str
) -> None:
    async def scenario() -> None:
        engines = [create_engine(postgres_url) for _ in range(3)]
        reapers = [
            Reaper(e, max_task_seconds=600, redis_url=redis_url, interval=INTERVAL) for e in engines
        ]
        try:
            for reaper in reapers:
                await reaper.start()
            await asyncio.sleep(3.0)  # about six intervals
            holders = [r for r in reapers if r.passes]
            assert len(holders) == 1, [r.passes for r in reapers]
            [holder] = holders
            assert holder.passes >= 3

            # Its process is killed: the loop stops and the lease is not released.
            await holder._background.stop()
            died = time.monotonic()
            others = [r for r in reapers if r is not holder]
            await _insert(
                postgres_url,
                [
                    ("redelivered", 1, "pending", "1 minute"),  # superseded: closed
                    ("redelivered", 2, "running", "0 seconds"),
                    ("backlog", 1, "pending", "1 minute"),  # no later attempt: left alone
                    ("just-redelivered", 1, "running", "1 second"),  # in its grace: left
                    ("just-redelivered", 2, "pending", "0 seconds"),
                ],
            )

            async def taken() -> bool:
                return any(r.passes for r in others)

            await _until(taken, 5.0, "a successor")
            # It waited for the lease to expire: three intervals after the last renewal.
            assert time.monotonic() - died >= 1.5 * INTERVAL

            async def closed() -> bool:
                return (await _statuses(postgres_url))[("redelivered", 1)][0] == "failed"

            await _until(closed, 5.0, "the superseded row closed")
            [successor] = [r for r in others if r.passes]
            statuses = await _statuses(postgres_url)
            assert statuses[("redelivered", 1)] == ("failed", LOST_ERROR)
            assert statuses[("redelivered", 2)][0] == "running"
            assert statuses[("backlog", 1)][0] == "pending"
            assert statuses[("just-redelivered", 1)][0] == "running"

            # A graceful stop releases the lease: the last one takes it at its next pass,
            # before the lease would have expired.
            await successor.stop()
            [last] = [r for r in others if r is not successor]
            assert last.passes == 0

            async def released() -> bool:
                return last.passes > 0

            await _until(released, 2 * INTERVAL * 1.2, "the last reaper")
        finally:
            for reaper, engine in zip(reapers, engines, strict=True):
                await reaper.stop()
                await engine.dispose()

    asyncio.run(scenario())


def test_a_reaper_stopped_at_any_moment_of_its_pass_stops(
    postgres_url: str, redis_url: str
) -> None:
    """A stop's cancel may land in the very turn a Redis command of the pass is sent, where
    Python 3.11's `asyncio.wait_for` (redis-py sends through it) drops it and the loop goes
    on: the stop cancels again until the loop has ended. A pass every few milliseconds and
    many stops at random moments meet that turn (a stop hung in the first dozen before)."""

    async def scenario() -> None:
        engine = create_engine(postgres_url)
        rng = random.Random(17)
        try:
            for _ in range(150):
                reaper = Reaper(engine, max_task_seconds=600, redis_url=redis_url, interval=0.002)
                await reaper.start()
                await asyncio.sleep(rng.uniform(0, 0.02))
                stopping = time.monotonic()
                async with asyncio.timeout(10):  # bounds a stop that would hang
                    await reaper.stop()
                assert time.monotonic() - stopping < 2.0
        finally:
            await engine.dispose()

    asyncio.run(scenario())
