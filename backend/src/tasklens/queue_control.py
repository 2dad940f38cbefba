"""Operator control of a whole priority queue: pause, resume, purge.

Distributed: the paused streams are a Redis set (`PAUSED_QUEUES`) that every worker re-reads
at most every `PAUSE_CHECK_SECONDS` in its read loop (broker.py), so a pause holds within a
second and costs no Redis call per message. Embedded: the in-process broker holds a paused
queue's messages until the resume. A purge takes the waiting messages through the consumer
group, as a consumer of its own, so each is either purged or delivered to a worker, never
both; the purged tasks' rows end `cancelled` "purged by <token>".
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import TaskiqMessage

from tasklens.analyses.kinds import TASK_KINDS, analysis_key
from tasklens.analyses.periods import Period
from tasklens.broker import DelayingInMemoryBroker
from tasklens.priorities import Priority, stream_for
from tasklens.queues import GROUP
from tasklens.runtime import Runtime
from tasklens.tasks.analyses import claim_key
from tasklens.tracking.lifecycle import LifecycleChange
from tasklens.tracking.middleware import attempt_of
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.redis_keys import DELAYED, PAUSED_QUEUES

logger = logging.getLogger(__name__)

PURGE_CONSUMER = "tasklens-purge"  # never a worker: what it reads is never run
PURGE_BATCH = 500


async def set_paused(runtime: Runtime, queue: Priority, paused: bool) -> None:
    """Idempotent: pausing a paused queue (or resuming a running one) changes nothing."""
    stream = stream_for(runtime.settings.queue_name, queue)
    if isinstance(runtime.broker, DelayingInMemoryBroker):
        if paused:
            runtime.broker.pause(stream)
        else:
            runtime.broker.resume(stream)
        return
    assert runtime.redis is not None
    if paused:
        await runtime.redis.sadd(PAUSED_QUEUES, stream)
    else:
        await runtime.redis.srem(PAUSED_QUEUES, stream)


async def purge(runtime: Runtime, queue: Priority, by: str) -> int:
    """Removes the queue's waiting messages (those a retry delays too), ends their rows
    `cancelled` "purged by `by`", frees their analyses' claims; returns how many. Messages
    already delivered to a worker run (or are cancelled one by one)."""
    stream = stream_for(runtime.settings.queue_name, queue)
    if isinstance(runtime.broker, DelayingInMemoryBroker):
        taken = runtime.broker.purge(stream)
    else:
        assert runtime.redis is not None
        taken = await _take_waiting(runtime.redis, stream)
        taken += await _take_delayed(runtime.redis, stream)
    now = time.time()
    for data in taken:
        try:
            message = runtime.broker.formatter.loads(data)
        except Exception as exc:  # not ours to understand: no row waits for it
            logger.info("purged a message that is not a task message: %s", exc)
            continue
        runtime.recorder.record(
            LifecycleChange(
                task_id=message.task_id,
                task_name=message.task_name,
                status=TaskStatus.CANCELLED,
                timestamp=now,
                attempt=attempt_of(message),
                queue=stream,
                completed_at=now,
                error_message=f"purged by {by}",
            )
        )
        await _release_analysis(runtime, message)
    return len(taken)


async def _take_waiting(redis: Redis, stream: str) -> list[bytes]:
    """XREADGROUP as the purge consumer, then XACK + XDEL: a message it read was delivered
    to no worker, and no worker can read it afterwards."""
    taken: list[bytes] = []
    while True:
        try:
            fetched: Any = await redis.xreadgroup(
                GROUP, PURGE_CONSUMER, {stream: ">"}, count=PURGE_BATCH
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # No worker ever started (or Redis lost the group): declare it as a worker does,
            # from the start of the stream, so what waits there is what gets purged.
            with contextlib.suppress(ResponseError):
                await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
            continue
        entries = [(mid, fields) for _s, messages in fetched or [] for mid, fields in messages]
        if not entries:
            break
        ids = [mid for mid, _ in entries]
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, GROUP, *ids)
            pipe.xdel(stream, *ids)
            await pipe.execute()
        taken += [fields[b"data"] for _, fields in entries if fields and b"data" in fields]
    with contextlib.suppress(ResponseError):
        await redis.xgroup_delconsumer(stream, GROUP, PURGE_CONSUMER)
    return taken


async def _take_delayed(redis: Redis, stream: str) -> list[bytes]:
    """A retry waiting out its delay is a waiting message too. ZREM decides who has it:
    the workers' move to the stream (broker.py) removes each member atomically as well."""
    prefix = stream.encode() + b"\0"
    everything: Any = await redis.zrange(DELAYED, 0, -1)
    members: list[bytes] = [m for m in everything if m.startswith(prefix)]
    if not members:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.zrem(DELAYED, member)
        removed = await pipe.execute()
    return [m[len(prefix) :] for m, won in zip(members, removed, strict=True) if won]


async def _release_analysis(runtime: Runtime, message: TaskiqMessage) -> None:
    """A purged analysis holds its subject's claim until the claim's TTL: free it now, or
    the next request for that subject answers "already running" with a task that never
    will."""
    kind = TASK_KINDS.get(message.task_name)
    if kind is None:
        return
    try:
        subject = str(message.kwargs["subject"])
        period = Period(message.kwargs.get("period", "all"))
    except (KeyError, ValueError):
        return
    key = claim_key(analysis_key(kind, subject, period))
    await runtime.coordinator.release(key, message.task_id)
