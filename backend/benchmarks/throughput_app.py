"""The broker the throughput benchmark's worker runs: TaskLens's own broker settings, with
TaskLensMiddleware only when BENCH_MIDDLEWARE=1, so the two runs differ in that alone."""

import os

from taskiq_redis import RedisStreamBroker

from tasklens.middleware import TaskLensMiddleware

REDIS_URL = os.environ["BENCH_REDIS_URL"]
QUEUE = "bench"

broker = RedisStreamBroker(
    REDIS_URL, queue_name=QUEUE, consumer_group_name="bench", consumer_id="0", maxlen=None
)
if os.environ.get("BENCH_MIDDLEWARE") == "1":
    broker.add_middlewares(
        TaskLensMiddleware(database_url=os.environ["BENCH_DATABASE_URL"], redis_url=REDIS_URL)
    )


@broker.task(task_name="bench.noop")
async def noop() -> None:
    """The unit of work: nothing, so only the queue and the middleware cost anything."""
