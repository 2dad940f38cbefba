"""The broker for a run mode: in-process for the embedded mode, Redis Streams otherwise.

Redis Streams (not lists or pub/sub) because a message is acknowledged only after its task
has finished and its final row is durable (recorder.py): a worker killed before that leaves
the message pending in the consumer group, and another worker claims it once it has been
idle longer than any task may run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, BrokerMessage, InMemoryBroker
from taskiq.exceptions import UnknownTaskError
from taskiq_redis import RedisStreamBroker

from tasklens.priorities import PRIORITY_ORDER, stream_for
from tasklens.reaper import ReaperMiddleware
from tasklens.tracking.middleware import REDELIVERIES_LABEL, STOPPED_ERROR, TaskLensMiddleware
from tasklens.tracking.recorder import LifecycleRecorder
from tasklens.tracking.redis_keys import DELAYED, PAUSED_QUEUES

logger = logging.getLogger(__name__)

STREAM_MAXLEN = 1_000_000
REDELIVERY_MARGIN_SECONDS = 10
# How long a stopping worker waits for Redis to take its unfinished messages back; if it does
# not (MULTI: all or none), they are delivered again after the idle timeout instead.
HAND_BACK_TIMEOUT_SECONDS = 5.0


# Messages one read takes without knowing the worker's free slots: small, so a high task
# never waits behind a big batch of low ones held here.
PRIORITY_READ_BATCH = 10
# With `concurrency` known, a read takes as many messages as the worker has free slots, up
# to this: each one starts at once, so none waits here ahead of a later high task.
MAX_READ_BATCH = 100
RECLAIM_EVERY_SECONDS = 1.0
# How old a worker's copy of the paused queues may be: one SMEMBERS per this, not per message.
PAUSE_CHECK_SECONDS = 0.5


MOVE_DUE_EVERY_SECONDS = 0.5
# KEYS[1] = the delayed set; ARGV[1] = now; each member is "<stream>\0<message>".
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, item in ipairs(due) do
  local cut = string.find(item, '\0', 1, true)
  redis.call('XADD', string.sub(item, 1, cut - 1), 'MAXLEN', '~', ARGV[2], '*',
             'data', string.sub(item, cut + 1))
  redis.call('ZREM', KEYS[1], item)
end
return #due
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _honour_a_lost_cancel() -> None:
    """Raises CancelledError if this task was cancelled and carries on regardless. On Python
    3.11 `asyncio.wait_for` returns the inner result when the cancel lands in the turn that
    result arrives (fixed in 3.12), and redis-py (whose connections have a socket timeout by
    default) sends every command through it: taskiq's cancel of a read at a worker's stop was
    then lost, the read loop went on with nothing left to yield, and the worker never exited."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def delay_of(message: BrokerMessage) -> float:
    """taskiq's `delay` label (set by the retry middlewares), in seconds."""
    try:
        return float(message.labels.get("delay") or 0)
    except (TypeError, ValueError):
        return 0.0


class DelayingInMemoryBroker(InMemoryBroker):
    """The embedded broker: taskiq's in-memory broker plus what a worker would give it,
    `delay` (retries back off here too) and at most `max_async_tasks` tasks at once (taskiq's
    starts every task the moment it is sent). Its queue is this process's memory, so a stop
    cannot hand anything back: see `shutdown`."""

    def __init__(
        self,
        *,
        max_async_tasks: int,
        grace_seconds: float = 10.0,
        queue_name: str = "tasklens",
        **kwargs: Any,
    ):
        super().__init__(max_async_tasks=max_async_tasks, **kwargs)
        self.grace_seconds = grace_seconds
        self.queue_name = queue_name
        self.paused: set[str] = set()  # streams whose messages wait here until resumed
        self._resumed = asyncio.Event()  # set (and replaced) by every resume
        self._slots = asyncio.Semaphore(max_async_tasks)
        # delayed, paused or waiting for a slot: the message, for a purge
        self._queued: dict[asyncio.Task[None], BrokerMessage] = {}
        self._running_streams: dict[asyncio.Task[None], str] = {}

    def stream_of(self, message: BrokerMessage) -> str:
        return str(message.labels.get("queue_name") or self.queue_name)

    async def kick(self, message: BrokerMessage) -> None:
        if self.find_task(message.task_name) is None:
            raise UnknownTaskError(task_name=message.task_name)
        task = asyncio.create_task(self._run(message, delay_of(message)))
        self._queued[task] = message
        task.add_done_callback(lambda done: self._queued.pop(done, None))

    def pause(self, stream: str) -> None:
        self.paused.add(stream)

    def resume(self, stream: str) -> None:
        self.paused.discard(stream)
        self._resumed.set()  # every waiter looks again
        self._resumed = asyncio.Event()

    def depths(self) -> dict[str, tuple[int, int]]:
        """Per stream: (waiting, running)."""
        counts: dict[str, tuple[int, int]] = {}
        for message in self._queued.values():
            waiting, running = counts.get(self.stream_of(message), (0, 0))
            counts[self.stream_of(message)] = (waiting + 1, running)
        for stream in self._running_streams.values():
            waiting, running = counts.get(stream, (0, 0))
            counts[stream] = (waiting, running + 1)
        return counts

    def purge(self, stream: str) -> list[bytes]:
        """Drops the messages of `stream` that have not started (no await between the look
        and the cancel: a message is purged or run, never both) and returns them."""
        purged = []
        for task, message in list(self._queued.items()):
            if self.stream_of(message) == stream:
                del self._queued[task]
                task.cancel()
                purged.append(message.message)
        return purged

    async def _run(self, message: BrokerMessage, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        stream = self.stream_of(message)
        while True:  # a paused stream's message waits here, holding no slot
            while stream in self.paused:
                await self._resumed.wait()
            await self._slots.acquire()
            if stream not in self.paused:
                break
            self._slots.release()
        this = asyncio.current_task()
        assert this is not None
        try:
            self._queued.pop(this, None)
            self._running_tasks.add(this)
            self._running_streams[this] = stream
            await self.receiver.callback(message=message.message)
        finally:
            self._running_tasks.discard(this)
            self._running_streams.pop(this, None)
            self._slots.release()

    async def shutdown(self) -> None:
        """Queued tasks are dropped; running tasks get `grace_seconds` to finish, and what
        still runs then is stopped and logged `failed` ("server shut down before it
        finished"). The `pending` rows left behind are closed as "server stopped before it
        ran": nothing stays open in the log for a queue that no longer exists."""
        for queued in list(self._queued):
            queued.cancel()
        running = [task for task in self._running_tasks if not task.done()]
        if running:
            logger.warning(
                "waiting up to %gs for %d running tasks", self.grace_seconds, len(running)
            )
            _, unfinished = await asyncio.wait(running, timeout=self.grace_seconds)
            if unfinished:
                for middleware in self.middlewares:
                    if isinstance(middleware, TaskLensMiddleware):
                        middleware.hand_back_running(STOPPED_ERROR)
                for task in unfinished:
                    task.cancel()
                await asyncio.wait(unfinished, timeout=5)
                logger.warning("stopped %d tasks still running after the grace", len(unfinished))
        await self._close_own_queue()
        await super().shutdown()

    async def _close_own_queue(self) -> None:
        lens = [m for m in self.middlewares if isinstance(m, TaskLensMiddleware)]
        reapers = [m.reaper for m in self.middlewares if isinstance(m, ReaperMiddleware)]
        try:
            for middleware in lens:
                await middleware.recorder.flush()  # the `pending` rows must be there to close
            for reaper in reapers:
                await reaper.close_own_queue()
        except Exception as exc:  # the database is down: the next start's reaper closes them
            logger.warning("could not close the queued tasks' rows: %s", exc)


class TaskLensStreamBroker(RedisStreamBroker):
    """RedisStreamBroker with one stream per priority, read strictly in order (high, then
    default, then low), and a reclaim of messages stranded by a dead worker that also runs
    on a quiet queue (taskiq-redis 1.2.4 only looks right after a read that returned
    something, so a crashed worker's task waited for the next enqueue)."""

    def __init__(
        self, url: str, queue_name: str, concurrency: int | None = None, **kwargs: Any
    ) -> None:
        """`concurrency` is the worker's `--max-async-tasks`: reads are sized to its free
        slots (see MAX_READ_BATCH); unknown, each read takes PRIORITY_READ_BATCH."""
        self.streams = [stream_for(queue_name, p) for p in PRIORITY_ORDER]
        extra: dict[str, str | int] = {s: ">" for s in self.streams if s != queue_name}
        super().__init__(url, queue_name=queue_name, additional_streams=extra, **kwargs)
        self.concurrency = concurrency
        self._in_flight: dict[tuple[str, Any], bytes] = {}
        self._recorder: LifecycleRecorder | None = None
        # One client over the pool for every send and acknowledgement: a client made per
        # call (as taskiq-redis does) costs more CPU than the XADD it sends.
        self._client = Redis(connection_pool=self.connection_pool)
        self._unfinished = 0  # yielded to the worker and not yet finished (ack not called)

    async def startup(self) -> None:
        """A finished task's message is acknowledged by the recorder once the task's final
        row is durable (recorder.py), in one pipeline per flush."""
        await super().startup()
        for middleware in self.middlewares:
            if isinstance(middleware, TaskLensMiddleware):
                self._recorder = middleware.recorder
                self._recorder.acknowledge = self._acknowledge

    async def _acknowledge(self, deliveries: list[tuple[str, Any]]) -> None:
        by_stream: dict[str, list[Any]] = {}
        for stream, message_id in deliveries:
            by_stream.setdefault(stream, []).append(message_id)
        async with self._client.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, self.consumer_group_name, *ids)
            await pipe.execute()

    async def kick(self, message: BrokerMessage) -> None:
        """A message with a `delay` label waits in a sorted set until it is due; workers
        move due ones into their stream (atomically, whoever gets there first)."""
        delay = delay_of(message)
        stream = message.labels.get("queue_name") or self.queue_name
        if delay <= 0:
            await self._client.xadd(
                stream, {b"data": message.message}, maxlen=self.maxlen, approximate=self.approximate
            )
            return
        member = str(stream).encode() + b"\0" + message.message
        await self._client.zadd(DELAYED, {member: time.time() + delay})

    def _message(self, stream: Any, message_id: Any, fields: Any) -> AckableMessage:
        """A delivery, remembered until acknowledged so a shutdown can hand it back."""
        name = stream.decode() if isinstance(stream, bytes) else str(stream)
        key = (name, message_id)
        data = self._in_flight[key] = fields[b"data"]

        async def ack_unless_handed_back() -> None:
            self._unfinished -= 1
            if self._in_flight.pop(key, None) is None:
                return
            if self._recorder is not None:
                self._recorder.when_written(key)  # acknowledged once its row is durable
            else:
                await self._ack_generator(id=message_id, queue_name=name)()

        return AckableMessage(data=data, ack=ack_unless_handed_back)

    def _read_count(self) -> int:
        """How many messages the next read takes: the worker's free slots (it asks for the
        next message only with one free), up to MAX_READ_BATCH."""
        if self.concurrency is None:
            return PRIORITY_READ_BATCH
        return max(1, min(MAX_READ_BATCH, self.concurrency - self._unfinished))

    def held_task_ids(self, limit: int) -> tuple[list[str], int]:
        """Ids of (at most `limit` of) the tasks delivered here and not yet acknowledged, and
        how many there are: a worker's heartbeat lists them, since after Redis lost its data
        this process's memory is the only place their messages are (lost_messages.py)."""
        ids, read = [], 0
        for data in itertools.islice(self._in_flight.values(), limit):
            read += 1
            task_id = self._task_id(data)
            if task_id is not None:  # not ours to understand: no row waits for it
                ids.append(task_id)
        return ids, len(ids) + len(self._in_flight) - read

    async def shutdown(self) -> None:
        """A worker stopping with messages unacknowledged (tasks still running after the
        grace period, or prefetched and never started) hands them back at once instead of
        leaving them to the idle-timeout redelivery: one MULTI re-adds each to its stream
        and acknowledges the original."""
        if self.is_worker_process:
            started: set[str] = set()
            for middleware in self.middlewares:
                if isinstance(middleware, TaskLensMiddleware):
                    started |= middleware.hand_back_running()
            stranded, self._in_flight = self._in_flight, {}
            if stranded:
                try:
                    # Bounded as a whole: a Redis that does not answer must not hold up
                    # the stop (each command would wait its socket timeout, and retry).
                    async with asyncio.timeout(HAND_BACK_TIMEOUT_SECONDS):
                        await self._hand_back(stranded, started)
                except Exception as exc:  # Redis down: they are redelivered after the timeout
                    logger.warning("could not hand back %d messages: %s", len(stranded), exc)
                else:
                    logger.warning("handed back %d unfinished messages", len(stranded))
        await super().shutdown()

    async def _hand_back(self, stranded: dict[tuple[str, Any], bytes], started: set[str]) -> None:
        redis = Redis(connection_pool=self.connection_pool)
        async with redis, redis.pipeline(transaction=True) as pipe:
            for (stream, message_id), data in stranded.items():
                # A started task's next run is a new attempt; a never-started one's is not.
                again = 1 if self._task_id(data) in started else 0
                pipe.xadd(
                    stream,
                    {b"data": self.with_redeliveries(data, again)},
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
                pipe.xack(stream, self.consumer_group_name, message_id)
            await pipe.execute()

    def _task_id(self, data: bytes) -> str | None:
        try:
            return self.formatter.loads(data).task_id
        except Exception:
            return None

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Deliveries, forever: a lost connection is retried with backoff, and the consumer
        groups are created again when a restarted Redis (without persistence) lost them."""
        delay = 0.1
        while True:
            try:
                async with contextlib.aclosing(self._read()) as reader:
                    async for message in reader:
                        delay = 0.1
                        yield message
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logger.warning("consumer group gone (Redis restarted?): creating it again")
                with contextlib.suppress(RedisError, OSError):
                    await self._declare_consumer_group()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                logger.warning("broker lost Redis (%s); reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _read(self) -> AsyncGenerator[AckableMessage, None]:
        """Strict priority order over the streams not paused. The paused set is re-read at
        most every PAUSE_CHECK_SECONDS, also before each yield: a message read just before
        its queue was paused is handed back to its stream instead of run."""
        group, consumer = self.consumer_group_name, self.consumer_name
        next_reclaim = next_move = next_pause_check = 0.0
        paused: set[str] = set()
        async with Redis(connection_pool=self.connection_pool) as redis:
            move_due = redis.register_script(_MOVE_DUE)

            async def check_paused() -> set[str]:
                nonlocal paused, next_pause_check
                if time.monotonic() >= next_pause_check:
                    next_pause_check = time.monotonic() + PAUSE_CHECK_SECONDS
                    paused = {_text(s) for s in await redis.smembers(PAUSED_QUEUES)}
                return paused

            while True:
                _honour_a_lost_cancel()
                if time.monotonic() >= next_move:
                    next_move = time.monotonic() + MOVE_DUE_EVERY_SECONDS
                    await move_due(keys=[DELAYED], args=[time.time(), STREAM_MAXLEN])
                open_streams = [s for s in self.streams if s not in await check_paused()]
                fetched: Any = None
                for stream in open_streams:  # best first, without waiting
                    fetched = await redis.xreadgroup(
                        group, consumer, {stream: ">"}, count=self._read_count(), noack=False
                    )
                    if fetched:
                        break
                if not fetched and open_streams:  # nothing: wait for the first on any
                    fetched = await redis.xreadgroup(
                        group,
                        consumer,
                        dict.fromkeys(open_streams, ">"),
                        block=int(MOVE_DUE_EVERY_SECONDS * 1000),
                        count=1,
                        noack=False,
                    )
                elif not open_streams:  # every queue paused
                    await asyncio.sleep(PAUSE_CHECK_SECONDS)
                # The whole batch is registered before the first yield: a shutdown may close
                # this generator between two yields, and must still hand back the rest.
                batch = [
                    ((_text(stream), message_id), self._message(stream, message_id, fields))
                    for stream, messages in fetched or []
                    for message_id, fields in messages
                ]
                for position, (key, message) in enumerate(batch):
                    if key[0] in await check_paused():  # a batch is of one stream
                        await self._hand_back_paused(batch[position:])
                        break
                    _honour_a_lost_cancel()  # the rest of the batch is handed back at stop
                    self._unfinished += 1
                    yield message
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + RECLAIM_EVERY_SECONDS
                    for stream in self.streams:
                        if stream in paused:  # a dead worker's message waits for the resume
                            continue
                        claimed: Any = await redis.xautoclaim(
                            stream,
                            group,
                            consumer,
                            min_idle_time=self.idle_timeout,
                            count=self.unacknowledged_batch_size,
                        )
                        reclaimed = []
                        for message_id, fields in claimed[1]:
                            if fields:  # None when the entry was trimmed from the stream
                                fields[b"data"] = await self._redelivered(
                                    redis, stream, message_id, fields[b"data"]
                                )
                                reclaimed.append(self._message(stream, message_id, fields))
                        for message in reclaimed:
                            _honour_a_lost_cancel()
                            self._unfinished += 1
                            yield message

    async def _hand_back_paused(self, rest: list[tuple[tuple[str, Any], AckableMessage]]) -> None:
        """Messages read but not yet yielded when their stream was paused go back to it (at
        its end: a pause may reorder the few messages a worker had just read)."""
        waiting = {key: self._in_flight.pop(key) for key, _ in rest if key in self._in_flight}
        if waiting:
            await self._hand_back(waiting, set())
            logger.info("queue paused: handed back %d messages just read", len(waiting))

    async def _redelivered(self, redis: Redis, stream: str, message_id: Any, data: bytes) -> bytes:
        """The message with its redelivery count in a label (from the stream's delivery
        counter, which survives any number of dead workers), so its run is a new attempt."""
        pending: Any = await redis.xpending_range(
            stream, self.consumer_group_name, min=message_id, max=message_id, count=1
        )
        deliveries = int(pending[0]["times_delivered"]) if pending else 2
        return self.with_redeliveries(data, deliveries - 1)

    def with_redeliveries(self, data: bytes, more: int) -> bytes:
        """`data` with `more` added to the redeliveries the message already carries."""
        try:
            message = self.formatter.loads(data)
        except Exception:  # not ours to understand: delivered as it is
            return data
        try:
            carried = int(message.labels.get(REDELIVERIES_LABEL, 0))
        except (TypeError, ValueError):
            carried = 0
        message.labels[REDELIVERIES_LABEL] = carried + more
        return self.formatter.dumps(message).message
