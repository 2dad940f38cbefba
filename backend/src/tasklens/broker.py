"""The broker for a run mode: in-process for the embedded mode, Redis Streams otherwise.

Redis Streams (not lists or pub/sub) because a message is acknowledged only after its task
has finished: a worker killed mid-task leaves the message pending in the consumer group,
and another worker claims it once it has been idle longer than any task may run.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
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


class TaskLensStreamBroker(RedisStreamBroker):
    """RedisStreamBroker whose worker also reclaims messages stranded by a dead worker when
    no new message arrives: taskiq-redis 1.2.4 only looks for them right after a read that
    returned something, so on a quiet queue a crashed worker's task waited for the next one.
    """

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                fetched: Any = await redis.xreadgroup(
                    self.consumer_group_name,
                    self.consumer_name,
                    {self.queue_name: ">"},
                    block=self.block,
                    noack=False,
                    count=self.count,
                )
                for stream, messages in fetched or []:
                    for message_id, fields in messages:
                        yield AckableMessage(
                            data=fields[b"data"],
                            ack=self._ack_generator(id=message_id, queue_name=stream),
                        )
                claimed: Any = await redis.xautoclaim(
                    self.queue_name,
                    self.consumer_group_name,
                    self.consumer_name,
                    min_idle_time=self.idle_timeout,
                    count=self.unacknowledged_batch_size,
                )
                for message_id, fields in claimed[1]:
                    if fields:  # None when the entry was trimmed from the stream
                        yield AckableMessage(
                            data=fields[b"data"],
                            ack=self._ack_generator(id=message_id, queue_name=self.queue_name),
                        )


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
    broker.add_middlewares(TaskLensMiddleware(recorder=recorder, cancellations=cancellations))
    register_tasks(broker, AnalysisServices(settings, coordinator, engine))
    return broker
