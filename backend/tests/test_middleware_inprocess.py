"""TaskLensMiddleware in this process: a TaskIQ app on taskiq's `InMemoryBroker`, logging to a
real database, with what a user then sees in the log and the live feed. No server, no
worker process: the lifecycle rules run in well under a second each, where the same
scenarios through real processes (test_lifecycle.py, test_third_party.py) take seconds.

Two setups, as users run it: the embedded shape (SQLite, live events in memory, the recorder
handed in as `tasklens serve` does) and an app's own (`TaskLensMiddleware(database_url=
postgresql…, redis_url=…)`, live events through the Redis stream the API reads)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import fresh_sqlite
from support import seen_live
from taskiq import (
    AsyncTaskiqDecoratedTask,
    InMemoryBroker,
    SimpleRetryMiddleware,
    TaskiqDepends,
    TaskiqMessage,
    TaskiqMiddleware,
    TaskiqResult,
)

from tasklens.tracking.database import create_engine
from tasklens.tracking.event_stream import EventStream, InProcessEventStream, RedisEventStream
from tasklens.tracking.middleware import TaskLensMiddleware
from tasklens.tracking.models import TaskExecutionLog
from tasklens.tracking.progress import Progress
from tasklens.tracking.recorder import build_recorder

CARD = "tok_4111111111111111"  # a payment token, passed as the task's `card_token`


class PaymentDeclined(Exception):
    pass


class Unprintable(Exception):
    """An exception whose message cannot even be formatted."""

    def __str__(self) -> str:
        raise RuntimeError("no message for you")


@dataclass
class App:
    """A TaskIQ app with the middleware, the URL of its log, and the live events it sent."""

    broker: InMemoryBroker
    middleware: TaskLensMiddleware
    database_url: str
    events: list[dict[str, Any]] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)

    def task(self, name: str) -> AsyncTaskiqDecoratedTask[Any, Any]:
        found = self.broker.find_task(name)
        assert found is not None
        return found

    async def rows(self, task_id: str) -> list[dict[str, Any]]:
        """The task's attempts as the log holds them, the dashboard's source."""
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                log = sa.inspect(TaskExecutionLog).local_table
                result = await conn.execute(
                    sa.select(log).where(log.c.task_id == task_id).order_by(log.c.attempt)
                )
                return [dict(row._mapping) for row in result]
        finally:
            await engine.dispose()

    async def wait_rows(
        self, task_id: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 15
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            await self.broker.wait_all()
            rows = await self.rows(task_id)
            if done(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"task {task_id} never got there: {rows}")
            await asyncio.sleep(0.05)

    async def wait_event(self, task_id: str, status: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while status not in [seen for _, seen in self.statuses(task_id)]:
            if time.monotonic() > deadline:
                raise AssertionError(f"no {status} event for {task_id}: {self.statuses(task_id)}")
            await asyncio.sleep(0.02)

    def statuses(self, task_id: str) -> list[tuple[int, str]]:
        return [
            (e["data"]["attempt"], e["status"])
            for e in self.events
            if e.get("type") == "task_event" and e["data"]["task_id"] == task_id
        ]


def _register_tasks(app: App) -> None:
    broker = app.broker

    @broker.task(task_name="billing.add")
    async def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    @broker.task(task_name="billing.refund")
    async def refund(invoice: str) -> None:
        raise ValueError(f"invoice {invoice} was never charged")

    @broker.task(task_name="billing.charge", retry_on_error=True, max_retries=3)
    async def charge(invoice: str, card_token: str) -> str:
        """Declined twice, then charged: a flaky payment API, seen through its retries."""
        attempt = app.attempts[invoice] = app.attempts.get(invoice, 0) + 1
        if attempt < 3:
            raise PaymentDeclined(f"gateway timeout charging {card_token} (try {attempt})")
        return f"charged {invoice}"

    @broker.task(task_name="billing.handover")
    async def handover(progress: Progress = TaskiqDepends()) -> None:
        """Its work ends, then it takes a while handing on what it held (a subject's slot)."""
        progress.ended()
        await asyncio.sleep(0.3)

    @broker.task(task_name="billing.unprintable")
    async def unprintable() -> None:
        raise Unprintable

    @broker.task(task_name="billing.hostile")
    async def hostile(note: str) -> None:
        raise RuntimeError(f"bad {note}\x00 <script>alert(1)</script> " + "x" * 10_000)


async def _collect(stream: EventStream, into: list[dict[str, Any]], ready: asyncio.Event) -> None:
    async for batch in stream.subscribe(ready):
        into.extend(batch)


@contextlib.asynccontextmanager
async def _running(app: App, stream: EventStream) -> AsyncIterator[App]:
    _register_tasks(app)
    ready = asyncio.Event()
    listener = asyncio.create_task(_collect(stream, app.events, ready))
    await asyncio.wait_for(ready.wait(), 10)
    await app.broker.startup()
    try:
        yield app
    finally:
        await app.broker.wait_all()
        await app.broker.shutdown()  # the middleware's shutdown writes what is buffered
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await stream.close()


def _broker() -> InMemoryBroker:
    # propagate_exceptions=False: a failing task is logged, not raised into the sender.
    return InMemoryBroker(propagate_exceptions=False)


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """The log's URL, and Redis's for the app's own setup (None: the embedded shape)."""
    if request.param == "sqlite":
        return fresh_sqlite(tmp_path / "tasklens.db"), None
    return str(request.getfixturevalue("postgres_url")), str(request.getfixturevalue("redis_url"))


@contextlib.asynccontextmanager
async def _app(setup: tuple[str, str | None], *after: TaskiqMiddleware) -> AsyncIterator[App]:
    """The app of `setup`, with `after` added behind TaskLensMiddleware (taskiq calls the
    `post_send` hooks last to first: theirs run before TaskLens's)."""
    url, redis_url = setup
    broker = _broker()
    stream: EventStream
    if redis_url is None:
        stream = InProcessEventStream()
        middleware = TaskLensMiddleware(recorder=build_recorder(url, None, events=stream))
    else:
        stream = RedisEventStream(redis_url)
        middleware = TaskLensMiddleware(database_url=url, redis_url=redis_url)
    broker.add_middlewares(SimpleRetryMiddleware(default_retry_count=3), middleware, *after)
    async with _running(App(broker, middleware, url), stream) as running:
        yield running


@pytest.fixture
async def app(setup: tuple[str, str | None]) -> AsyncIterator[App]:
    async with _app(setup) as running:
        yield running


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return fresh_sqlite(tmp_path / "tasklens.db")


def _terminal(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and rows[-1]["status"] in ("success", "failed", "cancelled")


async def test_a_task_that_succeeds_is_logged_with_its_params_result_and_worker(app: App) -> None:
    task = await app.task("billing.add").kiq(2, b=3)

    [row] = await app.wait_rows(task.task_id, _terminal)
    await app.wait_event(task.task_id, "success")

    assert row["task_name"] == "billing.add"
    assert row["status"] == "success"
    assert row["attempt"] == 1
    assert row["params"] == {"_args": [2], "b": 3}  # positional values as sent
    assert row["result"] == {"sum": 5}
    assert row["worker"] == app.middleware.worker_id
    assert ":" in row["worker"]  # host:pid
    assert row["duration_ms"] >= 0
    assert row["started_at"] <= row["completed_at"]
    assert row["error_message"] is None
    statuses = app.statuses(task.task_id)
    assert {attempt for attempt, _ in statuses} == {1}
    assert [status for _, status in statuses] in seen_live("pending", "running", "success")


class SlowAfterSending(TaskiqMiddleware):
    """Holds the sender up between the send and TaskLens's `post_send`, as a sender
    descheduled right after its XADD is: a fast worker starts the task meanwhile."""

    async def post_send(self, message: TaskiqMessage) -> None:
        await asyncio.sleep(0.1)


async def test_a_task_started_before_its_sender_returned_is_still_pending_before_running(
    setup: tuple[str, str | None],
) -> None:
    async with _app(setup, SlowAfterSending()) as app:
        task = await app.task("billing.add").kiq(2, b=3)
        [row] = await app.wait_rows(task.task_id, _terminal)
        await app.wait_event(task.task_id, "pending")

    # The live events, by status: each one's moment is when that state began.
    moments = {
        e["status"]: datetime.fromisoformat(e["timestamp"])
        for e in app.events
        if e.get("type") == "task_event" and e["data"]["task_id"] == task.task_id
    }
    assert {"pending", "success"} <= moments.keys()
    assert moments["pending"] <= row["started_at"] <= moments["success"]
    assert moments["pending"] == row["created_at"]  # the enqueue stamp, taken before the send
    assert row["status"] == "success"


async def test_a_task_whose_work_ended_before_it_returned_is_logged_ending_then(
    app: App,
) -> None:
    task = await app.task("billing.handover").kiq()

    [row] = await app.wait_rows(task.task_id, _terminal)

    assert row["status"] == "success"
    assert row["duration_ms"] < 250  # the 0.3 s spent handing on is not the work's
    assert (row["completed_at"] - row["started_at"]).total_seconds() < 0.25


async def test_a_task_that_fails_keeps_its_error_and_traceback(app: App) -> None:
    task = await app.task("billing.refund").kiq("INV-7")

    [row] = await app.wait_rows(task.task_id, _terminal)
    await app.wait_event(task.task_id, "failed")

    assert row["status"] == "failed"
    assert row["error_message"] == "ValueError: invoice INV-7 was never charged"
    assert 'raise ValueError(f"invoice {invoice} was never charged")' in row["error_traceback"]
    assert row["error_traceback"].rstrip().endswith("ValueError: invoice INV-7 was never charged")
    assert row["result"] is None
    assert app.statuses(task.task_id)[-1] == (1, "failed")


async def test_each_retry_is_an_attempt_and_secrets_stay_out_of_every_one(app: App) -> None:
    invoice = f"INV-{uuid.uuid4().hex[:6]}"
    task = await app.task("billing.charge").kiq(invoice, card_token=CARD)

    rows = await app.wait_rows(task.task_id, lambda rows: len(rows) == 3 and _terminal(rows))
    await app.wait_event(task.task_id, "success")

    assert [(r["attempt"], r["status"]) for r in rows] == [
        (1, "failed"),
        (2, "failed"),
        (3, "success"),
    ]
    assert rows[0]["error_message"] == "PaymentDeclined: gateway timeout charging *** (try 1)"
    assert rows[1]["error_message"] == "PaymentDeclined: gateway timeout charging *** (try 2)"
    assert rows[2]["result"] == f"charged {invoice}"
    assert all(r["params"]["card_token"] == "***" for r in rows)
    assert CARD not in str(rows)
    assert CARD not in str(app.events)
    events = app.statuses(task.task_id)
    assert [s for a, s in events if a == 1] in seen_live("pending", "running", "failed")
    assert [s for a, s in events if a == 2] in seen_live("pending", "running", "failed")
    assert [s for a, s in events if a == 3] in seen_live("pending", "running", "success")


async def test_a_task_sent_with_a_delay_is_logged_with_when_it_is_due(app: App) -> None:
    """taskiq's `delay` label, what a retry backing off is sent with: the row says when the
    attempt is due (a page counts down to it); a task sent to run at once says nothing."""
    add = app.task("billing.add")
    later = await add.kicker().with_labels(delay=30).kiq(1, b=2)
    at_once = await add.kiq(1, b=2)

    [delayed] = await app.wait_rows(later.task_id, _terminal)  # InMemoryBroker runs it now
    [undelayed] = await app.wait_rows(at_once.task_id, _terminal)

    due_in = (delayed["run_at"] - delayed["created_at"]).total_seconds()
    assert 30 <= due_in < 31
    assert undelayed["run_at"] is None


async def test_an_exception_that_cannot_be_printed_still_fails_the_task(app: App) -> None:
    task = await app.task("billing.unprintable").kiq()

    [row] = await app.wait_rows(task.task_id, _terminal)

    assert row["status"] == "failed"
    assert row["error_message"] == "<unprintable Unprintable>"
    assert row["error_traceback"]  # whatever could be formatted; never an empty row


async def test_a_hostile_error_message_is_stored_cut_short_and_clean(app: App) -> None:
    task = await app.task("billing.hostile").kiq("<b>&amp;</b>")

    [row] = await app.wait_rows(task.task_id, _terminal)
    await app.wait_event(task.task_id, "failed")

    message = row["error_message"]
    assert row["status"] == "failed"
    assert message.startswith("RuntimeError: bad <b>&amp;</b>")
    assert "<script>alert(1)</script>" in message  # stored as text: the UI escapes it
    assert "bad <b>&amp;</b>\ufffd <script>" in message  # PostgreSQL cannot hold NUL: no store does
    assert len(message) == 2000
    failed = [
        e
        for e in app.events
        if e.get("type") == "task_event" and e["data"]["task_id"] == task.task_id
    ][-1]
    # The live event is sent before the row is stored, and keeps the NUL.
    assert failed["data"]["error_message"] == message.replace("\ufffd", "\x00")


async def test_a_running_task_is_logged_running_by_this_process_until_it_ends(
    sqlite_url: str,
) -> None:
    """An in-memory broker runs here what it sends: the row names this process."""
    url = sqlite_url
    stream = InProcessEventStream()
    broker = _broker()
    middleware = TaskLensMiddleware(recorder=build_recorder(url, None, events=stream))
    broker.add_middlewares(middleware)
    gate = asyncio.Event()

    @broker.task(task_name="reports.wait")
    async def wait() -> str:
        await gate.wait()
        return "done"

    async with _running(App(broker, middleware, url), stream) as app:
        task = await wait.kiq()
        await app.wait_event(task.task_id, "running")
        await middleware.recorder.written(5)
        [row] = await app.rows(task.task_id)
        assert row["status"] == "running"
        assert row["worker"] == middleware.worker_id
        gate.set()
        [row] = await app.wait_rows(task.task_id, _terminal)
        assert (row["status"], row["result"]) == ("success", "done")
        assert app.statuses(task.task_id) == [(1, "pending"), (1, "running"), (1, "success")]


def _delivered(task_name: str) -> TaskiqMessage:
    """A message as a worker's broker hands it over (its sender is elsewhere)."""
    return TaskiqMessage(
        task_id=uuid.uuid4().hex, task_name=task_name, labels={}, args=[], kwargs={}
    )


async def _until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("never happened")
        await asyncio.sleep(0.005)


def _status_is(status: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda rows: bool(rows) and rows[-1]["status"] == status


async def test_a_task_taken_while_the_log_sleeps_is_shown_running_before_it_ends(
    sqlite_url: str,
) -> None:
    """A worker idle long enough for its recorder to sleep takes a slow task: `running` is
    announced without waiting for its end (a worker sends no `pending` to wake the log)."""
    stream = InProcessEventStream()
    broker = _broker()
    middleware = TaskLensMiddleware(recorder=build_recorder(sqlite_url, None, events=stream))
    broker.add_middlewares(middleware)
    async with _running(App(broker, middleware, sqlite_url), stream) as app:
        await _until(lambda: middleware.recorder._asleep)
        message = _delivered("reports.slow")
        await middleware.pre_execute(message)
        [row] = await app.wait_rows(message.task_id, _status_is("running"), timeout=2)
        assert row["worker"] == middleware.worker_id
        await middleware.post_execute(
            message, TaskiqResult(is_err=False, return_value=7, execution_time=0.0)
        )
        [row] = await app.wait_rows(message.task_id, _status_is("success"), timeout=2)
        assert (row["result"], row["started_at"] is not None) == (7, True)
        assert app.statuses(message.task_id) == [(1, "running"), (1, "success")]


async def test_a_task_taken_during_the_last_write_before_the_log_sleeps_is_shown_running(
    sqlite_url: str,
) -> None:
    """The race between a start and the loop's decision to sleep, the write between them
    made slow: the start comes while the loop is awake (no wake-up), and the loop must not
    then sleep on it."""
    stream = InProcessEventStream()
    broker = _broker()
    recorder = build_recorder(sqlite_url, None, events=stream)
    middleware = TaskLensMiddleware(recorder=recorder)
    broker.add_middlewares(middleware)
    writing = asyncio.Event()
    upsert = recorder.store.upsert

    async def slow_upsert(changes: Any) -> None:
        writing.set()
        await asyncio.sleep(0.3)
        await upsert(changes)

    recorder.store.upsert = slow_upsert  # type: ignore[method-assign]
    async with _running(App(broker, middleware, sqlite_url), stream) as app:
        quick = _delivered("reports.quick")
        await middleware.pre_execute(quick)
        await middleware.post_execute(
            quick, TaskiqResult(is_err=False, return_value=None, execution_time=0.0)
        )
        await asyncio.wait_for(writing.wait(), 5)  # the quiet tick's write of `quick`
        slow = _delivered("reports.slow")
        await middleware.pre_execute(slow)
        await app.wait_rows(slow.task_id, _status_is("running"), timeout=3)
        await middleware.post_execute(
            slow, TaskiqResult(is_err=False, return_value=None, execution_time=0.0)
        )
        await app.wait_rows(slow.task_id, _status_is("success"), timeout=3)
