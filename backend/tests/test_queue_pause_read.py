"""A worker's read loop and a paused queue, in-process against real Redis: what it had read
but not yet handed to taskiq when the pause came goes back to the queue, in order."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import orjson
import redis.asyncio
from taskiq import AckableMessage, TaskiqMessage

from tasklens.broker import PAUSE_CHECK_SECONDS, TaskLensStreamBroker
from tasklens.tracking.middleware import attempt_of
from tasklens.tracking.redis_keys import PAUSED_QUEUES


def test_messages_read_before_a_pause_go_back_to_their_queue_in_order(redis_url: str) -> None:
    async def scenario() -> None:
        broker = TaskLensStreamBroker(
            redis_url, queue_name="tasklens", consumer_group_name="tasklens", consumer_id="0"
        )
        await broker.startup()  # creates the consumer groups
        client = redis.asyncio.Redis.from_url(redis_url)

        async def send(task_id: str, **labels: Any) -> None:
            message = TaskiqMessage(
                task_id=task_id, task_name="demo.quick", labels=labels, args=[], kwargs={}
            )
            await broker.kick(broker.formatter.dumps(message))

        def task_of(delivery: AckableMessage) -> TaskiqMessage:
            return broker.formatter.loads(delivery.data)

        reader = broker.listen()
        try:
            for i in range(5):
                await send(f"d{i}")
            first = await anext(reader)  # the worker read all five in one batch
            assert task_of(first).task_id == "d0"

            await client.sadd(PAUSED_QUEUES, "tasklens")
            await asyncio.sleep(PAUSE_CHECK_SECONDS + 0.1)
            await send("h0", queue_name="tasklens:high")
            after_pause = await asyncio.wait_for(anext(reader), 5)
            assert task_of(after_pause).task_id == "h0"  # not d1: its queue is paused
            [group] = await client.xinfo_groups("tasklens")
            assert (group["pending"], group["lag"]) == (1, 4)  # d0 runs; d1..d4 wait again

            await client.srem(PAUSED_QUEUES, "tasklens")
            resumed = [await asyncio.wait_for(anext(reader), 5) for _ in range(4)]
            assert [task_of(m).task_id for m in resumed] == ["d1", "d2", "d3", "d4"]
            # Handed back before they started: their runs are still the first attempts.
            assert {attempt_of(task_of(m)) for m in resumed} == {1}
        finally:
            with contextlib.suppress(Exception):
                await reader.aclose()
            await client.aclose()
            await broker.shutdown()

    asyncio.run(scenario())


def test_a_read_takes_only_as_many_messages_as_the_worker_has_free_slots(redis_url: str) -> None:
    """Messages read but not started wait in this worker while another may be idle (and a
    high task would wait behind them): with its concurrency known, a read takes no more
    than its free slots."""

    async def scenario() -> None:
        broker = TaskLensStreamBroker(
            redis_url,
            queue_name="tasklens",
            consumer_group_name="tasklens",
            consumer_id="0",
            concurrency=3,
        )
        await broker.startup()
        client = redis.asyncio.Redis.from_url(redis_url)

        async def pending() -> int:
            [group] = await client.xinfo_groups("tasklens")
            return int(group["pending"])

        reader = broker.listen()
        try:
            for i in range(10):
                sent = TaskiqMessage(
                    task_id=f"t{i}", task_name="demo.quick", labels={}, args=[], kwargs={}
                )
                await broker.kick(broker.formatter.dumps(sent))
            running = [await anext(reader) for _ in range(3)]
            assert await pending() == 3  # three free slots: three read, not ten

            async def finish(delivery: AckableMessage) -> None:
                assert delivery.ack is not None
                acked = delivery.ack()  # no recorder: acknowledged at once, a slot free
                assert acked is not None
                await acked

            await finish(running[0])
            running.append(await asyncio.wait_for(anext(reader), 5))
            assert await pending() == 3  # the finished one acknowledged, one more read
            for delivery in running[1:]:
                await finish(delivery)
            more = [await asyncio.wait_for(anext(reader), 5) for _ in range(3)]
            assert len(more) == 3 and await pending() == 3
        finally:
            with contextlib.suppress(Exception):
                await reader.aclose()
            await client.aclose()
            await broker.shutdown()

    asyncio.run(scenario())


def test_a_read_cancelled_at_any_moment_ends_and_loses_no_message(redis_url: str) -> None:
    """taskiq cancels the pending read when a worker stops. On Python 3.11 a cancel landing
    as redis-py sends a command (through `asyncio.wait_for`) was dropped and the read loop
    went on, with nothing left to deliver: the worker never exited. Reads cancelled early in
    their loop, where the commands are sent, some while messages arrive: each ends within a
    second, and each message is delivered or, read but not delivered, handed back."""

    async def scenario() -> None:
        broker = TaskLensStreamBroker(
            redis_url, queue_name="tasklens", consumer_group_name="tasklens", consumer_id="0"
        )
        broker.is_worker_process = True  # its stop hands back what it read
        await broker.startup()
        client = redis.asyncio.Redis.from_url(redis_url)
        rng = random.Random(3)
        sent: set[str] = set()
        delivered: set[str] = set()
        try:
            for i in range(200):
                if i % 10 == 0:
                    message = TaskiqMessage(
                        task_id=f"t{i}", task_name="demo.quick", labels={}, args=[], kwargs={}
                    )
                    await broker.kick(broker.formatter.dumps(message))
                    sent.add(message.task_id)
                reader = broker.listen()
                read = asyncio.create_task(anext(reader))
                await asyncio.sleep(rng.uniform(0, 0.05))
                read.cancel()
                done, _ = await asyncio.wait({read}, timeout=1)
                assert done, f"read {i} went on after its cancel"
                if not read.cancelled():
                    delivery = read.result()
                    delivered.add(broker.formatter.loads(delivery.data).task_id)
                    acknowledged = delivery.ack()
                    if acknowledged is not None:
                        await acknowledged
                await reader.aclose()
        finally:
            await broker.shutdown()
        await client.aclose()
        # Nothing lost: delivered, or back in the queue, or still pending (read by a read
        # cancelled before its reply was taken: delivered again after the idle timeout).
        waiting, pending = await queue_state(redis_url)
        assert sent == delivered | waiting | pending
        assert not delivered & (waiting | pending)

    asyncio.run(scenario())


async def queue_state(redis_url: str) -> tuple[set[str], set[str]]:
    """Task ids of the queue's messages not yet delivered, and of those delivered and not
    acknowledged."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        [group] = await client.xinfo_groups("tasklens")
        entries: Any = await client.xrange("tasklens")
        pending: Any = await client.xpending_range("tasklens", "tasklens", "-", "+", 1000)
    finally:
        await client.aclose()
    unacknowledged = {p["message_id"] for p in pending}
    last = _entry_id(group["last-delivered-id"])
    waiting = {_task_id(f) for i, f in entries if _entry_id(i) > last}
    return waiting, {_task_id(f) for i, f in entries if i in unacknowledged}


def _entry_id(value: Any) -> tuple[int, int]:
    ms, _, seq = (value.decode() if isinstance(value, bytes) else str(value)).partition("-")
    return int(ms), int(seq)


def _task_id(fields: Any) -> str:
    return str(orjson.loads(fields[b"data"])["task_id"])
