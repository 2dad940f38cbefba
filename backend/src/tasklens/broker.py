"""The broker for a run mode: in-process for the embedded mode, Redis Streams otherwise.

Redis Streams (not lists or pub/sub) because a message is acknowledged only after its task
has finished: a worker killed mid-task leaves the message pending in the consumer group,
and another worker claims it once it has been idle longer than any task may run.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

from tasklens.cancellation import Cancellations
from tasklens.coordination import Coordinator
from tasklens.middleware import TaskLensMiddleware
from tasklens.recorder import LifecycleRecorder
from tasklens.settings import Settings
from tasklens.tasks import register_tasks
from tasklens.tasks.analyses import AnalysisServices

STREAM_MAXLEN = 1_000_000
REDELIVERY_MARGIN_SECONDS = 10


class Priority(StrEnum):
    HIGH = "high"  # manual triggers
    DEFAULT = "default"
    LOW = "low"  # scheduled refreshes


PRIORITY_ORDER = (Priority.HIGH, Priority.DEFAULT, Priority.LOW)
PRIORITY_READ_BATCH = 10  # small: a high task never waits behind a big batch of low ones
RECLAIM_EVERY_SECONDS = 1.0


def stream_for(queue_name: str, priority: Priority) -> str:
    return queue_name if priority is Priority.DEFAULT else f"{queue_name}:{priority.value}"


class TaskLensStreamBroker(RedisStreamBroker):
    """RedisStreamBroker with one stream per priority, read strictly in order (high, then
    default, then low), and a reclaim of messages stranded by a dead worker that also runs
    on a quiet queue (taskiq-redis 1.2.4 only looks right after a read that returned
    something, so a crashed worker's task waited for the next enqueue)."""

    def __init__(self, url: str, queue_name: str, **kwargs: Any) -> None:
        self.streams = [stream_for(queue_name, p) for p in PRIORITY_ORDER]
        extra: dict[str, str | int] = {s: ">" for s in self.streams if s != queue_name}
        super().__init__(url, queue_name=queue_name, additional_streams=extra, **kwargs)

    def _message(self, stream: Any, message_id: Any, fields: Any) -> AckableMessage:
        name = stream.decode() if isinstance(stream, bytes) else str(stream)
        return AckableMessage(
            data=fields[b"data"], ack=self._ack_generator(id=message_id, queue_name=name)
        )

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        group, consumer = self.consumer_group_name, self.consumer_name
        next_reclaim = 0.0
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                fetched: Any = None
                for stream in self.streams:  # best first, without waiting
                    fetched = await redis.xreadgroup(
                        group, consumer, {stream: ">"}, count=PRIORITY_READ_BATCH, noack=False
                    )
                    if fetched:
                        break
                if not fetched:  # nothing anywhere: wait for the first message on any
                    fetched = await redis.xreadgroup(
                        group,
                        consumer,
                        dict.fromkeys(self.streams, ">"),
                        block=self.block,
                        count=1,
                        noack=False,
                    )
                for stream, messages in fetched or []:
                    for message_id, fields in messages:
                        yield self._message(stream, message_id, fields)
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + RECLAIM_EVERY_SECONDS
                    for stream in self.streams:
                        claimed: Any = await redis.xautoclaim(
                            stream,
                            group,
                            consumer,
                            min_idle_time=self.idle_timeout,
                            count=self.unacknowledged_batch_size,
                        )
                        for message_id, fields in claimed[1]:
                            if fields:  # None when the entry was trimmed from the stream
                                yield self._message(stream, message_id, fields)


def build_broker(
    settings: Settings,
    recorder: LifecycleRecorder,
    coordinator: Coordinator,
    engine: AsyncEngine,
    cancellations: Cancellations | None,
) -> AsyncBroker:
    broker: AsyncBroker
    if settings.redis_url is None:
        broker = InMemoryBroker(max_async_tasks=settings.worker_concurrency)
    else:
        broker = TaskLensStreamBroker(
            settings.redis_url,
            queue_name=settings.queue_name,
            consumer_group_name="tasklens",
            consumer_id="0",  # a group created after the first kick still sees it
            maxlen=STREAM_MAXLEN,
            # Tasks are cut off at TASK_TIMEOUT_SECONDS (the `timeout` label), so a message
            # unacknowledged for longer belongs to a worker that is gone.
            idle_timeout=(settings.task_timeout_seconds + REDELIVERY_MARGIN_SECONDS) * 1000,
        )
    broker.add_middlewares(
        TaskLensMiddleware(
            redis_url=settings.redis_url, recorder=recorder, cancellations=cancellations
        )
    )
    register_tasks(broker, AnalysisServices(settings, coordinator, engine))
    return broker
