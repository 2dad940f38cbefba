"""`pending` rows whose message Redis lost (FLUSHDB, a restart without persistence) are closed
as failed by the reaper; rows whose message is still somewhere in the queue are not. Real
PostgreSQL and Redis, real `tasklens serve` / `tasklens worker` processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import pytest
import redis
import redis.asyncio
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Stack, fetch_log_rows, free_port, wait_for
from taskiq import TaskiqMessage

from tasklens.broker import TaskLensStreamBroker
from tasklens.lost_messages import (
    LOST_MESSAGE_ERROR,
    LostMessages,
    TooManyMessages,
    queued_task_ids,
)
from tasklens.reaper import Reaper
from tasklens.tracking.database import connect_postgres, create_engine
from tasklens.tracking.heartbeat import held_task_ids
from tasklens.tracking.lifecycle import succeeded_change
from tasklens.tracking.log_spill import LogSpill
from tasklens.tracking.log_store import PostgresLogStore
from tasklens.tracking.redis_keys import DELAYED, LOST_MESSAGES, WORKER_HELD_PREFIX, WORKERS


def rows_by_task(database_url: str) -> dict[str, dict[str, Any]]:
    rows = asyncio.run(fetch_log_rows(database_url, "task_id, attempt, status, error_message"))
    return {r["task_id"]: r for r in rows}  # the last attempt of each


async def _insert_pending(database_url: str, rows: list[tuple[str, str, str]]) -> None:
    """(task id, queue, age as an SQL interval) rows, `pending`."""
    conn = await connect_postgres(database_url)
    try:
        await conn.executemany(
            "INSERT INTO task_execution_logs (task_id, attempt, task_name, status, queue, "
            "created_at, updated_at) VALUES ($1, 1, 'demo.quick', 'pending', $2, "
            "now() - $3::text::interval, now() - $3::text::interval)",
            rows,
        )
    finally:
        await conn.close()


def lost_check(
    redis_url: str, interval: float, confirm_after: float, streams: list[str] | None = None
) -> LostMessages:
    return LostMessages(
        redis_url,
        streams=streams or ["tasklens"],
        group="tasklens",
        delayed_key=DELAYED,
        interval=interval,
        confirm_after=confirm_after,
    )


def quick_reaper(engine: AsyncEngine, redis_url: str) -> Reaper:
    """A reaper whose lost-message check looks every 0.2 s and confirms at the next look."""
    lost = lost_check(redis_url, 0.2, 0.01, ["tasklens:high", "tasklens", "tasklens:low"])
    return Reaper(engine, max_task_seconds=600, redis_url=redis_url, lost_messages=lost)


def test_only_rows_whose_message_is_nowhere_in_the_queue_are_closed(
    postgres_url: str, redis_url: str
) -> None:
    """Every place a message can be while its row says `pending`: a stream not yet read, a
    stream whose consumer group is gone, a consumer's unacknowledged entries, the delayed
    set, a live worker's memory (its heartbeat lists what it holds). A row closes only when
    its message is in none of them at two looks in a row, it is older than the grace and its
    queue is TaskLens's own."""

    async def scenario() -> list[int]:
        broker = TaskLensStreamBroker(
            redis_url, queue_name="tasklens", consumer_group_name="tasklens", consumer_id="0"
        )
        await broker.startup()  # creates the consumer groups

        async def send(task_id: str, **labels: Any) -> None:
            message = TaskiqMessage(
                task_id=task_id, task_name="demo.quick", labels=labels, args=[], kwargs={}
            )
            await broker.kick(broker.formatter.dumps(message))

        client = redis.asyncio.Redis.from_url(redis_url)
        await send("delivered")
        await send("acked")
        await send("queued")
        await send("queued-high", queue_name="tasklens:high")
        await send("delayed", delay=600)
        await send("group-gone", queue_name="tasklens:low")
        await client.xgroup_destroy("tasklens:low", "tasklens")
        # A consumer reads two (`queued` stays undelivered)...
        await client.xreadgroup("tasklens", "w1", {"tasklens": ">"}, count=2)
        read: Any = await client.xrange("tasklens")
        ids = {TaskiqMessage.model_validate_json(f[b"data"]).task_id: i for i, f in read}
        await client.xack("tasklens", "tasklens", ids["acked"])  # ...and finishes one
        # A live worker holds one whose stream entry is gone (Redis lost it after delivery);
        # a dead one's memory went with it.
        now = time.time()
        for worker, last_seen, held in (("live", now, "in-memory"), ("dead", now - 60, "x")):
            await client.hset(WORKERS, worker, json.dumps({"last_seen": last_seen}))
            await client.set(WORKER_HELD_PREFIX + worker, json.dumps({"ids": [held], "count": 1}))
        await client.aclose()
        await broker.shutdown()

        old, young = "5 minutes", "1 second"
        await _insert_pending(
            postgres_url,
            [
                *[(t, "tasklens", old) for t in ("queued", "delayed", "delivered", "acked")],
                ("queued-high", "tasklens:high", old),
                ("group-gone", "tasklens:low", old),
                ("flushed", "tasklens", old),
                ("in-memory", "tasklens", old),
                ("x", "tasklens", old),
                ("flushed-young", "tasklens", young),
                ("foreign", "thirdparty", old),  # another broker's queue: not ours to judge
            ],
        )
        engine = create_engine(postgres_url)
        reaper = quick_reaper(engine, redis_url)
        try:
            closed = []
            for _ in range(3):
                closed.append(await reaper.reap())
                await asyncio.sleep(0.25)
            return closed
        finally:
            await reaper.stop()
            await engine.dispose()

    closed = asyncio.run(scenario())
    assert closed == [0, 3, 0]  # suspected at the first look, closed at the second, once
    rows = rows_by_task(postgres_url)
    for task_id in ("acked", "flushed", "x"):
        assert (rows[task_id]["status"], rows[task_id]["error_message"]) == (
            "failed",
            LOST_MESSAGE_ERROR,
        )
    for task_id in rows.keys() - {"acked", "flushed", "x"}:
        assert rows[task_id]["status"] == "pending", task_id
    with redis.Redis.from_url(redis_url) as client:
        assert int(client.get(LOST_MESSAGES) or 0) == 3


def test_a_queue_too_long_to_read_or_a_worker_holding_too_many_is_not_judged(
    redis_url: str,
) -> None:
    """Past the budget the check gives up (closes nothing) rather than read for ever; so it
    does when a live worker holds more messages than its heartbeat can list."""

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            for i in range(30):
                await client.xadd("tasklens", {b"data": b'{"task_id": "t%d"}' % i})
            found = await queued_task_ids(client, ["tasklens"], "tasklens", DELAYED, 30)
            assert found == {f"t{i}" for i in range(30)}
            with pytest.raises(TooManyMessages):
                await queued_task_ids(client, ["tasklens"], "tasklens", DELAYED, 29)

            await client.hset(WORKERS, "w", json.dumps({"last_seen": time.time()}))
            await client.set(WORKER_HELD_PREFIX + "w", json.dumps({"ids": ["a"], "count": 1}))
            assert await held_task_ids(client) == {"a"}
            await client.set(WORKER_HELD_PREFIX + "w", json.dumps({"ids": ["a"], "count": 2}))
            assert await held_task_ids(client) is None
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_the_queue_is_read_only_when_a_row_is_old_enough_to_judge(
    postgres_url: str, redis_url: str
) -> None:
    """Reading the queue parses every queued message on the event loop of whichever process
    holds the lease, often an API process: with no `pending` row past the grace (a healthy
    queue, or a backlog younger than it) the check asks no more than its lease, the spill
    and one query. The last command of its Redis connection tells what it read."""

    async def last_command(client: redis.asyncio.Redis) -> str:
        listing: Any = await client.client_list()
        return next(str(c["cmd"]) for c in listing if c["name"] == "lost-check")

    async def scenario() -> tuple[str, str, list[int]]:
        client = redis.asyncio.Redis.from_url(redis_url)
        engine = create_engine(postgres_url)
        lost = lost_check(redis_url, 1.0, 0.01)  # looks within 3 s of each other count
        try:
            await client.xadd("tasklens", {b"data": b'{"task_id": "young"}'})
            await _insert_pending(postgres_url, [("young", "tasklens", "1 second")])
            await lost._redis.client_setname("lost-check")
            assert await lost.confirmed(engine) == []
            healthy = await last_command(client)
            await _insert_pending(postgres_url, [("gone", "tasklens", "5 minutes")])
            assert await lost.confirmed(engine) == []  # suspected
            judged = await last_command(client)
            await asyncio.sleep(0.02)
            confirmed = await lost.confirmed(engine)
        finally:
            await lost.close()
            await engine.dispose()
            await client.aclose()
        return healthy, judged, confirmed

    healthy, judged, confirmed = asyncio.run(scenario())
    assert healthy == "xlen"  # the spill's length: nothing after it
    assert judged == "hgetall"  # the queue read, then the workers' held messages
    assert len(confirmed) == 1


def test_tasks_flushed_from_redis_end_failed_and_counted_while_held_ones_run(
    distributed: Stack,
) -> None:
    """A worker running ten tasks at once has fetched 10 slow ones (a read takes as many as
    it has free slots); it is frozen while 300 more are queued, and Redis is flushed. The 300
    are closed as lost within TASK_TIMEOUT + 60 s and counted on /health/queue. The worker,
    thawed, still holds the 10 in memory (their stream entries are gone) and runs them to the
    end: none of them is closed, all succeed, each in one attempt."""
    distributed.env |= {
        "TASKLENS_TASK_TIMEOUT_SECONDS": "20",
        "TASKLENS_LOST_CHECK_INTERVAL_SECONDS": "1",
        "TASKLENS_WORKER_CONCURRENCY": "10",
    }
    database_url, redis_url = (
        distributed.env["TASKLENS_DATABASE_URL"],
        distributed.env["TASKLENS_REDIS_URL"],
    )
    api = distributed.start_api()
    worker = distributed.start_worker()
    held = api.enqueue("demo.slow", count=10, steps=16, step_seconds=0.5)  # 8 s each, at once
    api.wait_task(held[0], "running")

    def all_delivered() -> bool:
        with redis.Redis.from_url(redis_url) as client:
            return int(client.xpending("tasklens", "tasklens")["pending"]) == 10

    wait_for(all_delivered, timeout=30, what="the worker to fetch all 10")
    os.killpg(worker.popen.pid, signal.SIGSTOP)
    try:
        doomed = api.enqueue("demo.quick", count=200)
        with api.client() as client:
            for priority in ("high", "low"):
                response = client.post(
                    "/api/v1/demo", json={"task": "demo.quick", "count": 50, "priority": priority}
                )
                assert response.status_code == 202, response.text
                doomed += response.json()["task_ids"]

        def all_pending() -> bool:
            rows = rows_by_task(database_url)
            return all(rows.get(t, {}).get("status") == "pending" for t in doomed)

        wait_for(all_pending, timeout=30, what="300 pending rows", interval=0.5)
        with redis.Redis.from_url(redis_url) as client:
            client.flushdb()
        flushed_at = time.monotonic()
    finally:
        os.killpg(worker.popen.pid, signal.SIGCONT)

    def all_lost() -> bool:
        rows = rows_by_task(database_url)
        return all(rows[t]["status"] == "failed" for t in doomed)

    wait_for(all_lost, timeout=20 + 60, what="the flushed rows closed", interval=1)
    took = time.monotonic() - flushed_at
    rows = rows_by_task(database_url)
    assert {(rows[t]["status"], rows[t]["error_message"]) for t in doomed} == {
        ("failed", LOST_MESSAGE_ERROR)
    }
    with api.client() as client:
        body = client.get("/health/queue").json()
    assert body["lost_messages"] == 300
    assert took < 20 + 60

    wait_for(
        lambda: all(api.task(t).get("status") == "success" for t in held),
        timeout=120,
        what="the held tasks to succeed",
        interval=1,
    )
    for task_id in held:
        [attempt] = api.task(task_id)["attempts"]
        assert (attempt["status"], attempt["error_message"]) == ("success", None)


def test_suspects_from_before_an_outage_or_a_long_pause_count_for_nothing(
    postgres_url: str, redis_url: str
) -> None:
    """A worker's buffered `running` write lands a few seconds after the database is back:
    so a look that failed, or one long ago, does not confirm anything; two fresh looks do."""

    async def scenario() -> list[int]:
        await _insert_pending(postgres_url, [("gone", "tasklens", "5 minutes")])
        engine = create_engine(postgres_url)
        unreachable = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
        lost = lost_check(redis_url, 0.01, 0.05)
        found = []
        try:
            found.append(len(await lost.confirmed(engine)))  # suspected
            await asyncio.sleep(0.06)
            with pytest.raises(OSError):
                await lost.confirmed(unreachable)  # the database is away: suspects dropped
            found.append(len(await lost.confirmed(engine)))  # suspected again
            await asyncio.sleep(0.5)  # longer than 3 looks: stale
            found.append(len(await lost.confirmed(engine)))  # suspected again
            await asyncio.sleep(0.06)
            found.append(len(await lost.confirmed(engine)))  # confirmed
        finally:
            await lost.close()
            await engine.dispose()
            await unreachable.dispose()
        return found

    assert asyncio.run(scenario()) == [0, 0, 0, 1]


def test_the_process_that_suspects_keeps_the_lease_until_it_can_confirm(
    postgres_url: str, redis_url: str
) -> None:
    """Every API and worker process runs the check, one at a time (a lease), and the reaper
    looks once a pass: less often than a short TASKLENS_LOST_CHECK_INTERVAL_SECONDS. A lease
    that lapsed between two looks went to the other process, whose first look only suspects,
    and back: the flushed rows of a two-process test stayed `pending` past its deadline."""

    async def scenario() -> list[int]:
        await _insert_pending(postgres_url, [("gone", "tasklens", "5 minutes")])
        engine = create_engine(postgres_url)
        worker, api = lost_check(redis_url, 0.1, 0.5), lost_check(redis_url, 0.1, 0.5)
        found = []
        try:
            found.append(len(await worker.confirmed(engine)))  # suspected
            await asyncio.sleep(1.2)  # the reaper's next pass: many intervals later
            found.append(len(await api.confirmed(engine)))  # the worker still holds it
            found.append(len(await worker.confirmed(engine)))  # confirmed
        finally:
            await worker.close()
            await api.close()
            await engine.dispose()
        return found

    assert asyncio.run(scenario()) == [0, 0, 1]


def test_a_task_whose_final_row_waits_in_the_spill_is_not_closed_as_lost(
    postgres_url: str, redis_url: str
) -> None:
    """A worker acknowledges a message once its final row is durable, in the database or, while
    the database is down, in the spill (log_spill.py). Until the spill is drained, the row
    still says `pending` and its message is gone from every stream: the lost-message rule must
    wait for the drain, which then writes the task's true outcome."""

    async def scenario() -> tuple[list[int], list[int]]:
        await _insert_pending(postgres_url, [("done", "tasklens", "5 minutes")])
        spill = LogSpill(redis_url)
        await spill.spill(
            [succeeded_change("done", "demo.quick", 1, time.time(), None, 5.0, 1, "w")]
        )
        engine = create_engine(postgres_url)
        reaper = quick_reaper(engine, redis_url)
        store = PostgresLogStore(postgres_url)
        try:
            while_spilled = []
            for _ in range(3):
                while_spilled.append(await reaper.reap())
                await asyncio.sleep(0.25)
            assert await spill.drain(store.upsert) == 1
            after = []
            for _ in range(3):
                after.append(await reaper.reap())
                await asyncio.sleep(0.25)
            return while_spilled, after
        finally:
            await reaper.stop()
            await spill.close()
            await store.close()
            await engine.dispose()

    while_spilled, after = asyncio.run(scenario())
    assert while_spilled == [0, 0, 0]
    assert after == [0, 0, 0]
    row = rows_by_task(postgres_url)["done"]
    assert (row["status"], row["error_message"]) == ("success", None)
