"""`TaskLensMiddleware`: add it to any TaskIQ broker and every task's lifecycle is logged.

    broker.add_middlewares(TaskLensMiddleware(database_url="postgresql+asyncpg://…",
                                              redis_url="redis://…"))

Client side it records `pending` once a message is sent; worker side `running`, then
`success`/`failed`/`cancelled` with duration, error and traceback. Each retry attempt
(taskiq's `_retries` label) is its own row. Hooks only touch memory: writes happen in the
recorder's background flush, so a slow or dead database never slows a task down.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import os
import socket
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from taskiq import AsyncBroker, InMemoryBroker, TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.exceptions import NoResultError

from tasklens.tracking.cancellation import Cancellations
from tasklens.tracking.database import DEFAULT_SCHEMA, check_schema_name
from tasklens.tracking.heartbeat import Heartbeat
from tasklens.tracking.lifecycle import (
    MAX_JSON_CHARS,
    LifecycleChange,
    json_safe,
    label_time,
    ran_change,
    running_change,
    succeeded_change,
)
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.pubsub import RedisPubSub
from tasklens.tracking.recorder import ChangeToBuild, LifecycleRecorder, build_recorder
from tasklens.tracking.redaction import Redactor, TracebackFilter, url_password
from tasklens.tracking.redis_keys import CONTROL_CHANNEL

logger = logging.getLogger(__name__)

ENQUEUED_AT_LABEL = "tasklens_enqueued_at"
# A task with this label says itself when its work starts (`Progress.started()`), e.g. after
# waiting for a per-subject slot: until then its row stays `pending`.
DEFERRED_START_LABEL = "tasklens_deferred_start"
ATTEMPT_LABEL = "tasklens_attempt"
# Set by the broker on a message it delivers again (its worker died or shut down before the
# task finished): each delivery is its own attempt, so the log keeps the lost one too.
REDELIVERIES_LABEL = "tasklens_redeliveries"
MAX_TRACEBACK_CHARS = 32_000
# The message of the task running in this asyncio task: taskiq logs a failing task's
# traceback before any hook sees the error, and the log filter must know whose secrets to hide.
_EXECUTING: contextvars.ContextVar[TaskiqMessage | None] = contextvars.ContextVar(
    "tasklens_executing", default=None
)
# taskiq's loggers of a failing task's traceback and of arguments that do not parse.
TASKIQ_TASK_LOGGERS = ("taskiq.receiver.receiver", "taskiq.receiver.params_parser")
# A token minted while a worker runs is known to its redaction within this time.
TOKEN_DIGESTS_REFRESH_SECONDS = 15.0
TOKEN_DIGESTS_TIMEOUT_SECONDS = 3.0
RESULT_WITHHELD = "<result withheld: it could not be made storable>"
HANDED_BACK_ERROR = "worker shut down: handed back to the queue"
# The embedded mode's queue is in memory: nothing to hand back to.
STOPPED_ERROR = "server shut down before it finished"


def default_queue_of(broker: AsyncBroker) -> str | None:
    """The queue's name as each broker calls it: `queue_name` (TaskLens's and taskiq-redis's
    brokers), `subject` (taskiq-nats: the NATS subject its messages are published on), or
    taskiq-aio-pika's only task queue (with several, it routes by the `queue_name` label,
    which the log reads first). None for a broker with none of these."""
    for attribute in ("queue_name", "subject"):
        name = getattr(broker, attribute, None)
        if isinstance(name, str) and name:
            return name
    queues = getattr(broker, "_task_queues", None)  # taskiq-aio-pika's list of Queue
    if isinstance(queues, list) and len(queues) == 1:
        name = getattr(queues[0], "name", None)
        if isinstance(name, str) and name:
            return name
    return None


def _not_started(*_: object) -> Any:
    raise RuntimeError("TaskLensMiddleware used before broker.startup()")


class Deferred(Exception):
    """Raised by a task that sent itself again to run later (no slot yet): not a failure."""


def attempt_of(message: TaskiqMessage) -> int:
    """1 + taskiq's `_retries` label (the retry middlewares increment it) + the times the
    broker redelivered the message after a lost worker."""
    labels = message.labels
    if "_retries" not in labels and REDELIVERIES_LABEL not in labels:
        return 1  # a first delivery: the common case, on every task's hot path
    return 1 + _count_label(labels, "_retries") + _count_label(labels, REDELIVERIES_LABEL)


def _count_label(labels: dict[str, Any], label: str) -> int:
    try:
        return max(int(labels.get(label, 0)), 0)
    except (TypeError, ValueError):
        return 0


def executing_attempt(message: TaskiqMessage) -> int:
    """The attempt pinned by pre_execute: retry middlewares bump `_retries` in the very
    labels dict of the failed message before post_execute sees it."""
    pinned = message.labels.get(ATTEMPT_LABEL)
    return int(pinned) if pinned is not None else attempt_of(message)


def _created_at(message: TaskiqMessage, now: float) -> float | None:
    """The attempt row's created_at when the sender stamped it (every write of a worker
    then lands on that row, whatever order the writes reach the database in), else None:
    the log store takes the existing row's."""
    stamp = message.labels.get(ENQUEUED_AT_LABEL)
    return None if stamp is None else label_time(stamp, now)


def due_at(message: TaskiqMessage, now: float) -> float | None:
    """When a message sent with taskiq's `delay` label (a retry backing off, a task sent
    for later) is due: what a page counts down to. None for one that runs at once."""
    delay = message.labels.get("delay")
    if not delay:
        return None  # the common case, on every task's hot path
    try:
        seconds = float(delay)
    except (TypeError, ValueError):
        return None
    return now + seconds if 0 < seconds < 1e9 else None


def describe(error: BaseException) -> str:
    """`Type: message`; `<unprintable Type>` when the exception's `__str__` raises."""
    name = type(error).__name__
    try:
        return f"{name}: {error}"
    except BaseException:  # a hostile __str__ may raise anything
        return f"<unprintable {name}>"


def format_traceback(error: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(error))
    except BaseException:  # as above, for whatever traceback calls
        return f"<unprintable {type(error).__name__}>"


class TaskLensMiddleware(TaskiqMiddleware):
    def __init__(
        self,
        database_url: str | None = None,
        redis_url: str | None = None,
        *,
        recorder: LifecycleRecorder | None = None,
        cancellations: Cancellations | None = None,
        redactor: Redactor | None = None,
        redact_keys: Iterable[str] = (),
        secrets: Iterable[str] = (),
        result_max_chars: int = MAX_JSON_CHARS,
        token_digests: Callable[[], Awaitable[Iterable[str]]] | None = None,
        db_schema: str = DEFAULT_SCHEMA,
        concurrency: int | None = None,
    ) -> None:
        """`redact_keys` adds sensitive key words; `secrets` are values of this app's (say
        its own API keys) never to be stored: the passwords in both URLs are added to them.
        TaskLens's own processes pass a `redactor` built from their settings instead, and
        `token_digests`, which reads the digests of the stored API tokens (at startup, then
        every TOKEN_DIGESTS_REFRESH_SECONDS) so that they are kept out of errors too.
        `db_schema` is TaskLens's PostgreSQL schema, as `TASKLENS_DB_SCHEMA` names it for
        `tasklens migrate` and `tasklens serve`. `concurrency` is how many tasks a worker
        runs at once (taskiq's `--max-async-tasks`), shown in the workers list: taskiq does
        not tell its middlewares."""
        super().__init__()
        if recorder is None and database_url is None:
            raise ValueError("TaskLensMiddleware needs a database_url or a recorder")
        self._db_schema = check_schema_name(db_schema)
        self.redactor = redactor or Redactor(
            redact_keys, [*secrets, url_password(database_url), url_password(redis_url)]
        )
        self.result_max_chars = result_max_chars
        self._token_digests = token_digests
        self._digest_refresher: asyncio.Task[None] | None = None
        self._digests_failing = False  # warned once per outage
        self._traceback_filter = TracebackFilter(self.redactor, self._running_secrets)
        self._database_url = database_url
        self._redis_url = redis_url
        self._recorder = recorder
        if cancellations is None and redis_url is not None and recorder is None:
            cancellations = Cancellations(RedisPubSub(redis_url, CONTROL_CHANNEL), redis_url)
        self.cancellations = cancellations
        self.started_at = datetime.now(UTC)
        self.concurrency = concurrency
        # Attempts this process finished since it started (cancelled ones too) and those
        # of them that failed: the workers list shows them (heartbeat.py).
        self.processed_count = 0
        self.failed_count = 0
        self._heartbeat: Heartbeat | None = None
        # (task id, attempt) -> (perf_counter and Unix time at the start, task name, the
        # recorder's place of its `running`: post_execute withdraws it if it still waits)
        self._started: dict[tuple[str, int], tuple[float, float, str, int]] = {}
        # (time, perf_counter) of attempts whose work ended before their task returned.
        self._ended: dict[tuple[str, int], tuple[float, float]] = {}
        self._handed_back: set[str] = set()  # task ids stopped at shutdown, not finished
        self._errors: dict[tuple[str, int], BaseException] = {}
        self.worker_id = ""
        self._runs_what_it_sends = False
        self._queue: str | None = None  # the broker's default queue, for messages without one
        self._queue_looked_up = False
        # Bound once: `self._running_change` would build a new method object per task.
        self._build_running = self._running_change
        self._build_ran = self._ran_change
        # The recorder's two methods every task calls, bound once it is known: the `recorder`
        # property and the method lookup cost each hook more than the call itself.
        self._record_later: Callable[[ChangeToBuild], int] = _not_started
        self._withdraw: Callable[[int], ChangeToBuild | None] = _not_started
        if recorder is not None:
            self._use(recorder)

    def _use(self, recorder: LifecycleRecorder) -> None:
        self._recorder = recorder
        self._record_later, self._withdraw = recorder.record_later, recorder.withdraw

    @property
    def recorder(self) -> LifecycleRecorder:
        if self._recorder is None:
            raise RuntimeError("TaskLensMiddleware used before broker.startup()")
        return self._recorder

    async def startup(self) -> None:
        # Computed here, not in __init__: taskiq forks worker processes after import.
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = datetime.now(UTC)  # a forked worker starts after the import
        self.processed_count = self.failed_count = 0
        # An in-memory broker runs each task it sends right here: the `pending` row names
        # this process already, so the reaper knows whose queue it was if the process dies.
        self._runs_what_it_sends = isinstance(self.broker, InMemoryBroker)
        self._queue, self._queue_looked_up = None, False
        if self._recorder is None:
            assert self._database_url is not None
            self._use(build_recorder(self._database_url, self._redis_url, schema=self._db_schema))
        await self.recorder.start()
        if self._token_digests is not None:
            await self._refresh_token_digests()
            self._digest_refresher = asyncio.create_task(self._keep_token_digests())
        if self.cancellations is not None:
            await self.cancellations.start()
        if self.broker.is_worker_process or self._runs_what_it_sends:
            for name in TASKIQ_TASK_LOGGERS:
                logging.getLogger(name).addFilter(self._traceback_filter)
        if self._redis_url is not None and self.broker.is_worker_process:
            # TaskLensStreamBroker's (broker.py imports this module, hence no isinstance).
            held = getattr(self.broker, "held_task_ids", None)
            self._heartbeat = Heartbeat(
                self._redis_url,
                self.worker_id,
                self.running_task_ids,
                held,
                self.recorder_figures,
                self.profile,
                self.started_at,
            )
            await self._heartbeat.start()
        if self.broker.is_worker_process:
            # The recorder's buffers make a worker's collector run middle passes that a stock
            # worker rarely makes, and start-up (imports, connections) leaves its oldest
            # generation close to a full pass: that pass, a stop of every task in flight that
            # walks the whole heap, would come under load. Taken here instead, once.
            gc.collect()

    def recorder_figures(self) -> dict[str, int]:
        """What GET /metrics shows of this worker's recorder (heartbeat.py carries it)."""
        stats = self.recorder.stats
        return {
            "buffered_rows": self.recorder.backlog,
            "rows_dropped": stats.rows_dropped,
            "write_failures": stats.write_failures,
        }

    def profile(self) -> dict[str, object]:
        """What the workers list shows of this process besides its liveness."""
        consumed = getattr(self.broker, "streams", None)  # TaskLensStreamBroker's priorities
        if not (isinstance(consumed, list) and all(isinstance(q, str) for q in consumed)):
            default = self.default_queue()
            consumed = [] if default is None else [default]
        return {
            "processed": self.processed_count,
            "failed": self.failed_count,
            "concurrency": self.concurrency,
            "queues": consumed,
        }

    def default_queue(self) -> str | None:
        """Where the broker sends a message that names no queue, looked up at the first
        message: taskiq-aio-pika declares its default queue after the middlewares' startup."""
        if not self._queue_looked_up:
            self._queue, self._queue_looked_up = default_queue_of(self.broker), True
        return self._queue

    def running_count(self) -> int:
        return len(self._started)

    def running_task_ids(self) -> list[str]:
        """Oldest first (the dict keeps the order tasks started in)."""
        return [task_id for task_id, _attempt in self._started]

    async def _refresh_token_digests(self) -> None:
        assert self._token_digests is not None
        try:
            async with asyncio.timeout(TOKEN_DIGESTS_TIMEOUT_SECONDS):  # never holds up startup
                self.redactor.token_digests = frozenset(await self._token_digests())
            self._digests_failing = False
        except Exception as exc:  # the database may be down: keep the last known digests
            if not self._digests_failing:
                logger.warning("tasklens: could not read the stored token digests: %r", exc)
            self._digests_failing = True

    async def _keep_token_digests(self) -> None:
        while True:
            await asyncio.sleep(TOKEN_DIGESTS_REFRESH_SECONDS)
            await self._refresh_token_digests()

    def _running_secrets(self) -> Sequence[str]:
        message = _EXECUTING.get()
        return self.redactor.secrets if message is None else self._secrets_of(message)

    async def shutdown(self) -> None:
        for name in TASKIQ_TASK_LOGGERS:
            logging.getLogger(name).removeFilter(self._traceback_filter)
        if self._digest_refresher is not None:
            self._digest_refresher.cancel()
            self._digest_refresher = None
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        if self.cancellations is not None:
            await self.cancellations.stop()
        if self._recorder is not None:
            await self._recorder.stop()

    # The hooks taskiq calls for every task are coroutines with no await in them: taskiq wraps
    # each call in `maybe_awaitable`, whose check costs a plain return value ~670 ns and a
    # coroutine ~360 ns (measured). Nothing else runs while one of them runs.

    async def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        # Per attempt: retries are re-sent. A string, as every label TaskLens adds: some
        # brokers send the labels as headers that take only strings (taskiq-nats).
        message.labels[ENQUEUED_AT_LABEL] = repr(time.time())
        return message

    def params_of(self, message: TaskiqMessage) -> Any:
        """The params as logged: positional args are redacted by their parameter's name
        when this process knows the task's function, else by their shape."""
        return self._params(message.task_name, message.args, message.kwargs)

    def _params(self, task_name: str, args: Sequence[Any], kwargs: dict[str, Any] | None) -> Any:
        if not args and not kwargs:
            return {}  # what the redaction below makes of them, in a tenth of the time
        positions = self.redactor.positions(task_name, self.broker.find_task)
        return json_safe(self.redactor.params(args, kwargs or {}, positions))

    # No hook may raise: taskiq would never acknowledge the message (a redelivery, or a row
    # left `running`), nor run the middlewares after this one. So each catches and logs.

    async def post_send(self, message: TaskiqMessage) -> None:
        try:
            self._record_pending(message)
        except Exception:
            logger.exception("tasklens: could not log task %s as pending", message.task_id)

    def _record_pending(self, message: TaskiqMessage) -> None:
        # Recorded after a successful send, so a failed kick leaves no phantom `pending` row.
        # Its moment is the enqueue stamp taken before the send, not now: a worker may start
        # the task before this line runs, and its live `running` must not come out earlier
        # than the `pending` it follows.
        now = time.time()
        enqueued = label_time(message.labels.get(ENQUEUED_AT_LABEL), now)
        self.recorder.record(
            LifecycleChange(
                task_id=message.task_id,
                task_name=message.task_name,
                status=TaskStatus.PENDING,
                timestamp=enqueued,
                attempt=attempt_of(message),
                created_at=enqueued,
                params=self.params_of(message),
                queue=message.labels.get("queue_name") or self.default_queue(),
                worker=self.worker_id if self._runs_what_it_sends else None,
                run_at=due_at(message, now),
            )
        )

    # The two hooks every task runs keep their work in their own body (a call less each).

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        try:
            _EXECUTING.set(message)  # this asyncio task's own: taskiq runs the task in it
            labels, task_id = message.labels, message.task_id
            # attempt_of's common case spelled out: a first delivery
            first = "_retries" not in labels and REDELIVERIES_LABEL not in labels
            attempt = 1 if first else attempt_of(message)
            labels[ATTEMPT_LABEL] = "1" if first else str(attempt)  # labels hold strings
            cancellations = self.cancellations
            if cancellations is not None and not cancellations.started(task_id):
                # Cancelled while it waited: taskiq reads `timeout` after this hook, so the
                # task is stopped at its first await and post_execute logs it `cancelled`.
                labels["timeout"] = 0
                return message
            if not labels.get(DEFERRED_START_LABEL):
                self._record_start(message, attempt)
        except Exception:
            logger.exception("tasklens: could not log the start of task %s", message.task_id)
        return message

    def record_start(self, message: TaskiqMessage) -> None:
        """The task's work begins: `running`, and its duration is counted from here."""
        self._record_start(message, executing_attempt(message))

    def _record_start(self, message: TaskiqMessage, attempt: int) -> None:
        # Every task runs this and post_execute between taskiq's own awaits, where each line
        # costs about three times what it does in a loop (specs/benchmarks.md): so the least
        # work here, and the change is built later by the recorder from plain values.
        at, started = time.time(), time.perf_counter()
        task_id, task_name, labels = message.task_id, message.task_name, message.labels
        # The params go with `running` too: the sender's `pending` row may never be written
        # (an API killed after its 202). They are redacted at the flush, off this path, from
        # copies: taskiq parses the message's own args in place before the task runs.
        # No copies of a task's empty arguments: the common case, and each object kept until
        # the flush is one more for the garbage collector's passes.
        args, kwargs = message.args, message.kwargs
        place = self._record_later(
            (
                self._build_running,
                task_id,
                task_name,
                attempt,
                at,
                labels.get(ENQUEUED_AT_LABEL),
                list(args) if args else (),
                dict(kwargs) if kwargs else None,
                # the broker's default queue, once looked up (a broker may have none)
                labels.get("queue_name") or self._queue or self.default_queue(),
            )
        )
        self._started[(task_id, attempt)] = (started, at, task_name, place)

    def _running_change(
        self,
        task_id: str,
        task_name: str,
        attempt: int,
        at: float,
        enqueued_at: Any,
        args: Sequence[Any],
        kwargs: dict[str, Any] | None,
        queue: str | None,
    ) -> LifecycleChange:
        """`running`, built at the flush. Without the sender's enqueue stamp the row's
        creation time is unknown: the log store then keeps that of the attempt's row."""
        params = self._params(task_name, args, kwargs)
        return running_change(
            task_id, task_name, attempt, at, enqueued_at, params, queue, self.worker_id
        )

    def record_end(self, message: TaskiqMessage) -> None:
        """The task's work ends now, before it returns: a task that then hands something on
        (a subject's slot) is logged as finished before the next holder's start."""
        self._ended[(message.task_id, executing_attempt(message))] = (
            time.time(),
            time.perf_counter(),
        )

    def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        # A retry middleware may replace result.error with NoResultError: keep the original.
        try:
            self._errors[(message.task_id, executing_attempt(message))] = exception
        except Exception:
            logger.exception("tasklens: could not keep the error of task %s", message.task_id)

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        try:
            at, finished = time.time(), time.perf_counter()
            task_id = message.task_id
            pinned = message.labels.get(ATTEMPT_LABEL)  # executing_attempt, spelled out
            key = (task_id, int(pinned) if pinned is not None else attempt_of(message))
            if self._ended:
                at, finished = self._ended.pop(key, (at, finished))
            started = self._started.pop(key, None)
            error = self._errors.pop(key, None) if self._errors else None
            if error is None and result.is_err:
                error = result.error
            if self.cancellations is not None:
                self.cancellations.finished(task_id)
            if self._handed_back and task_id in self._handed_back:
                return  # already logged as handed back; another worker runs it again
            if isinstance(error, Deferred):
                return  # sent again to wait for its turn: the row stays `pending`
            if error is not None and self.is_cancelled(task_id):
                error = asyncio.CancelledError("cancelled by an operator")
            started_at = started[1] if started else None
            duration_ms = (finished - started[0]) * 1000 if started else None
            self.processed_count += 1
            # The place of `running`: if it still waits for the flush (the common case), the
            # change recorded here includes it.
            place = started[3] if started else -1
            if error is None or isinstance(error, NoResultError):
                value = result.return_value
                # A plain value has nothing to cut or clean: then the values only are kept until
                # the flush (a partial holding the args would be tracked by the garbage collector).
                plain = value is None or isinstance(value, bool | int | float)
                storable = (
                    None
                    if plain
                    else partial(
                        self._storable, task_id, message.task_name, message.args, message.kwargs
                    )
                )
                running = self._withdraw(place)
                if running is not None:  # one change: `success` carrying its `running`
                    self._record_later((self._build_ran, running, at, duration_ms, value, storable))
                    return
                self._record_later(
                    (
                        succeeded_change,
                        task_id,
                        message.task_name,
                        key[1],
                        at,
                        started_at,
                        duration_ms,
                        value,
                        self.worker_id,
                        message.labels.get(ENQUEUED_AT_LABEL),
                        storable,
                    )
                )
                return
            self._record_failed(message, key[1], error, at, started_at, duration_ms, place)
        except Exception:
            logger.exception("tasklens: could not log the end of task %s", message.task_id)

    def _record_failed(
        self,
        message: TaskiqMessage,
        attempt: int,
        error: BaseException,
        at: float,
        started_at: float | None,
        duration_ms: float | None,
        place: int,
    ) -> None:
        """`failed` or `cancelled`: rare, so built here with its redacted error (and its
        `running`, if still waiting, withdrawn and absorbed at the flush)."""
        task_id = message.task_id
        secrets = self._secrets_of(message)
        cancelled = isinstance(error, asyncio.CancelledError)
        self.failed_count += not cancelled
        change = LifecycleChange(
            task_id=task_id,
            task_name=message.task_name,
            status=TaskStatus.CANCELLED if cancelled else TaskStatus.FAILED,
            timestamp=at,
            attempt=attempt,
            created_at=_created_at(message, at),
            worker=self.worker_id,
            started_at=started_at,
            completed_at=at,
            duration_ms=duration_ms,
            error_message=self.redactor.scrub_text(describe(error), secrets)[:2000],
            error_traceback=self.redactor.scrub_text(format_traceback(error), secrets)[
                -MAX_TRACEBACK_CHARS:
            ],
        )
        running = self.recorder.withdraw(place)
        if running is None:
            self.recorder.record(change)
        else:
            self.recorder.record_later((self._absorb_running, change, running))

    def _ran_change(
        self,
        running: tuple[Any, ...],
        at: float,
        duration_ms: float,
        result: Any,
        storable: Callable[[Any], Any] | None,
    ) -> LifecycleChange:
        """`success` with its withdrawn `running` (`_record_start`'s values), built at the
        flush: one change, one live event."""
        _, task_id, task_name, attempt, started_at, enqueued_at, args, kwargs, queue = running
        try:  # _params's own first step, spelled out: most tasks have no arguments
            params = {} if not args and not kwargs else self._params(task_name, args, kwargs)
        except Exception:  # as a `running` that could not be built: the outcome still counts
            self.recorder.stats.rows_rejected += 1
            logger.exception("tasklens: could not log the params of task %s", task_id)
            params = None
        return ran_change(
            task_id,
            task_name,
            attempt,
            started_at,
            at,
            duration_ms,
            result,
            self.worker_id,
            enqueued_at,
            params,
            queue,
            storable,
        )

    def _absorb_running(self, change: LifecycleChange, running: tuple[Any, ...]) -> LifecycleChange:
        """A failure with its withdrawn `running`, built at the flush."""
        try:
            return change.absorb(running[0](*running[1:]))
        except Exception:  # as a `running` that could not be built: the outcome still counts
            self.recorder.stats.rows_rejected += 1
            logger.exception("tasklens: could not log the start of task %s", change.task_id)
            return change

    def _secrets_of(self, message: TaskiqMessage) -> list[str]:
        positions = self.redactor.positions(message.task_name, self.broker.find_task)
        return self.redactor.secret_values(message.args, message.kwargs, positions)

    def _storable(
        self, task_id: str, task_name: str, args: list[Any], kwargs: dict[str, Any], result: Any
    ) -> Any:
        """The result as a `success` row keeps it, at the recorder's flush: cut short past
        `result_max_chars` and cleared of secrets."""
        known: list[Sequence[str]] = []

        def secrets() -> Sequence[str]:  # only for a result with text in it
            if not known:
                positions = self.redactor.positions(task_name, self.broker.find_task)
                known.append(self.redactor.secret_values(args, kwargs, positions))
            return known[0]

        try:
            result = self.redactor.scrub_result(json_safe(result, self.result_max_chars), secrets)
        except Exception:  # the row must still say `success`
            logger.exception("tasklens: the result of task %s could not be stored", task_id)
            result = RESULT_WITHHELD
        return result

    def hand_back_running(self, error: str = HANDED_BACK_ERROR) -> set[str]:
        """Shutdown past the grace period: every task still running here is stopped and
        logged `failed` with `error` (a stream broker puts its message back in the queue:
        the next run is a new attempt); one still waiting for its subject's slot is stopped
        and stays `pending`. Returns the ids of the tasks that had started."""
        now = time.time()
        started_ids = {task_id for task_id, _ in self._started}
        if self.cancellations is not None:
            for task_id in self.cancellations.running_ids():
                self._handed_back.add(task_id)
                self.cancellations.interrupt(task_id)
        for key, (started, started_at, task_name, _place) in list(self._started.items()):
            self._handed_back.add(key[0])
            self.recorder.record(
                LifecycleChange(
                    task_id=key[0],
                    task_name=task_name,
                    status=TaskStatus.FAILED,
                    timestamp=now,
                    attempt=key[1],
                    worker=self.worker_id,
                    started_at=started_at,
                    completed_at=now,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    error_message=error,
                )
            )
        self._started.clear()
        return started_ids

    def is_cancelled(self, task_id: str) -> bool:
        return self.cancellations is not None and self.cancellations.is_cancelled(task_id)

    def record_progress(
        self, message: TaskiqMessage, fraction: float, note: str | None = None
    ) -> None:
        key = (message.task_id, executing_attempt(message))
        started = self._started.get(key)
        if started is not None and started[3] >= 0:  # its `running` now goes out before this
            self._started[key] = (*started[:3], -1)
        self.recorder.record(
            LifecycleChange(
                task_id=message.task_id,
                task_name=message.task_name,
                status=TaskStatus.RUNNING,
                timestamp=(now := time.time()),
                attempt=key[1],
                created_at=_created_at(message, now),
                worker=self.worker_id,
                progress=min(max(fraction, 0.0), 1.0),
                progress_message=note,
            )
        )
