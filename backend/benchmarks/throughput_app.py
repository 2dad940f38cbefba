"""The broker the throughput benchmark's worker runs: TaskLens's own broker settings, with
TaskLensMiddleware only when BENCH_MIDDLEWARE=1, so the two runs differ in that alone."""

import os

from taskiq_redis import RedisStreamBroker

from tasklens.middleware import TaskLensMiddleware
from tasklens.tracking import recorder

if dilation := float(os.environ.get("BENCH_TIME_DILATION") or 0):
    # Under valgrind (benchmarks/instructions.py) the worker runs ~50 times slower: the
    # recorder's intervals stretch alike, so that its batches hold as many tasks as at speed.
    stretched = {"event_interval": 0.025 * dilation, "write_interval": 0.1 * dilation}
    defaults = recorder.build_recorder.__kwdefaults__
    assert defaults is not None
    defaults.update(stretched)

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
