"""The broker the throughput benchmark's worker runs: TaskLens's own broker settings, with
TaskLensMiddleware only when BENCH_MIDDLEWARE=1, so the two runs differ in that alone.
BENCH_MIDDLEWARE=empty, stamp, idle or hooks adds the cost-splitting arms' middlewares instead."""

import os
import time
from collections.abc import Sequence
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq_redis import RedisStreamBroker

from tasklens.middleware import TaskLensMiddleware
from tasklens.tracking import heartbeat, pubsub, recorder
from tasklens.tracking.cancellation import Cancellations
from tasklens.tracking.lifecycle import LifecycleChange
from tasklens.tracking.redis_keys import CONTROL_CHANNEL

if dilation := float(os.environ.get("BENCH_TIME_DILATION") or 0):
    # Under valgrind (benchmarks/instructions.py) the worker runs ~50 times slower: the
    # recorder's intervals stretch alike, so that its batches hold as many tasks as at speed,
    # and so do the timers that run per second rather than per task (the spill's drain, the
    # heartbeat, the cancel listener's poll), which would otherwise run 50 times per task.
    stretched = {"event_interval": 0.025 * dilation, "write_interval": 0.1 * dilation}
    defaults = recorder.build_recorder.__kwdefaults__
    recorder_defaults = recorder.LifecycleRecorder.__init__.__kwdefaults__
    assert defaults is not None and recorder_defaults is not None
    defaults.update(stretched)
    recorder_defaults["drain_interval"] *= dilation
    heartbeat.INTERVAL_SECONDS *= dilation
    pubsub.POLL_SECONDS *= dilation

REDIS_URL = os.environ["BENCH_REDIS_URL"]
QUEUE = "bench"

broker = RedisStreamBroker(
    REDIS_URL, queue_name=QUEUE, consumer_group_name="bench", consumer_id="0", maxlen=None
)


class NoOpHooks:
    """Hooks that return at once (first among a middleware's bases, they override its own);
    coroutines, as TaskLensMiddleware's are."""

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        return message

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        return None


class TimingMiddleware(TaskiqMiddleware):
    """The `stamp` arm: a middleware that only times each task, the least a per-task monitor
    does (a clock read and a dictionary entry each side): the floor under TaskLens's hooks."""

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[str, float] = {}

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self._started[message.task_id] = time.perf_counter()
        return message

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        self._started.pop(message.task_id, None)


class NoOpMiddleware(NoOpHooks, TaskiqMiddleware):
    """The `empty` arm: what taskiq's calling of a middleware's two hooks costs a task."""


class IdleTaskLensMiddleware(NoOpHooks, TaskLensMiddleware):
    """The `idle` arm: TaskLensMiddleware's start-up and background work (its recorder's
    loop, the cancel listener, the heartbeat, the log filters) with hooks that do nothing."""


class _NoStore:
    async def upsert(self, changes: Sequence[LifecycleChange]) -> None:
        raise AssertionError("the `hooks` arm writes nothing")

    async def close(self) -> None:
        return None


class DroppingRecorder(recorder.LifecycleRecorder):
    """The `hooks` arm: every change the hooks record is dropped at the flush, unbuilt (and
    counted as merged, so that the loop ticks as it does with real changes)."""

    @classmethod
    def like_the_middlewares(cls) -> "DroppingRecorder":
        """With the tick and write intervals the full middleware's recorder gets
        (build_recorder's defaults, stretched above under valgrind)."""
        defaults = recorder.build_recorder.__kwdefaults__ or {}
        return cls(
            _NoStore(),
            None,
            event_interval=defaults["event_interval"],
            write_interval=defaults["write_interval"],
        )

    async def _merge_and_publish(self) -> int:
        return len(self._take_recorded())


match os.environ.get("BENCH_MIDDLEWARE"):
    case "1":
        broker.add_middlewares(
            TaskLensMiddleware(database_url=os.environ["BENCH_DATABASE_URL"], redis_url=REDIS_URL)
        )
    case "stamp":
        broker.add_middlewares(TimingMiddleware())
    case "empty":
        broker.add_middlewares(NoOpMiddleware())
    case "idle" | "hooks" as arm:
        kind = IdleTaskLensMiddleware if arm == "idle" else TaskLensMiddleware
        broker.add_middlewares(
            kind(
                redis_url=REDIS_URL,
                recorder=DroppingRecorder.like_the_middlewares(),
                cancellations=Cancellations(
                    pubsub.RedisPubSub(REDIS_URL, CONTROL_CHANNEL), REDIS_URL
                ),
            )
        )


@broker.task(task_name="bench.noop")
async def noop() -> None:
    """The unit of work: nothing, so only the queue and the middleware cost anything."""
