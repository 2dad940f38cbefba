"""The broker for a run mode: in-process for the embedded mode, Redis Streams otherwise.

Redis Streams (not lists or pub/sub) because a message is acknowledged only after its task
has finished: a worker killed mid-task leaves the message pending in the consumer group,
and another worker claims it once it has been idle longer than any task may run.
"""

from __future__ import annotations

from taskiq import AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

from tasklens.middleware import TaskLensMiddleware
from tasklens.recorder import LifecycleRecorder
from tasklens.settings import Settings
from tasklens.tasks import register_tasks

STREAM_MAXLEN = 1_000_000


def build_broker(settings: Settings, recorder: LifecycleRecorder) -> AsyncBroker:
    broker: AsyncBroker
    if settings.redis_url is None:
        broker = InMemoryBroker(max_async_tasks=settings.worker_concurrency)
    else:
        broker = RedisStreamBroker(
            settings.redis_url,
            queue_name=settings.queue_name,
            consumer_group_name="tasklens",
            consumer_id="0",  # a group created after the first kick still sees it
            maxlen=STREAM_MAXLEN,
            idle_timeout=(settings.task_timeout_seconds + 60) * 1000,
            unacknowledged_lock_timeout=30,
        )
    broker.add_middlewares(TaskLensMiddleware(recorder=recorder))
    register_tasks(broker, settings)
    return broker
