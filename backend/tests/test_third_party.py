"""Any TaskIQ app that adds TaskLensMiddleware shows up in TaskLens, retries included, on
whatever broker it runs: taskiq-redis, RabbitMQ (taskiq-aio-pika) and NATS JetStream
(taskiq-nats). Each test runs the same scenario on each broker, with a real `taskiq worker`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from support import OPERATOR_TOKEN, Api, LiveEvents, Stack, app_module, seen_live, wait_for
from taskiq_nats import PullBasedJetStreamBroker

from tasklens.lost_messages import LostMessages
from tasklens.middleware import TaskLensMiddleware
from tasklens.reaper import Reaper
from tasklens.tracking.database import create_engine
from tasklens.tracking.redis_keys import DELAYED

HERE = Path(__file__).parent
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
NATS_URL = "nats://127.0.0.1:4222"
BROKERS = ["redis", "rabbitmq", "nats"]


@dataclass
class ForeignApp:
    """`thirdparty_app` on one broker: imported here to send, run by `taskiq worker`s."""

    kind: str
    name: str
    workdir: Path
    module: ModuleType
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def tasks(self) -> Any:
        return self.module

    def start_worker(self) -> None:
        log = (self.workdir / f"thirdparty-worker-{len(self.workers)}.log").open("wb")
        command = [sys.executable, "-m", "taskiq", "worker", "thirdparty_app:broker"]
        self.workers.append(
            subprocess.Popen(
                [*command, "--workers", "1"],
                cwd=HERE,
                env={**os.environ, "PYTHONPATH": str(HERE)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill_worker() takes its children
            )
        )

    def kill_worker(self, index: int) -> None:
        """SIGKILL to the worker and the processes it forked, as if its machine died."""
        os.killpg(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait(10)

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(20)


async def _delete_broker_objects(kind: str, name: str) -> None:
    """The RabbitMQ queues and exchange, or the JetStream stream, that the test declared."""
    if kind == "rabbitmq":
        import aio_pika

        connection = await aio_pika.connect(RABBITMQ_URL)
        async with connection:
            channel = await connection.channel()
            for queue in (name, f"{name}.dead", f"{name}.delay"):
                await channel.queue_delete(queue)
            await channel.exchange_delete(name)
    elif kind == "nats":
        import nats

        client = await nats.connect(NATS_URL)
        try:
            await client.jetstream().delete_stream(name)
        finally:
            await client.close()


@pytest.fixture
async def foreign(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str, redis_url: str
) -> AsyncIterator[ForeignApp]:
    """The foreign app on the broker named by the test's parameter, its worker not started."""
    kind: str = request.param
    name = f"thirdparty_{uuid.uuid4().hex[:12]}"
    app_env = {
        "THIRDPARTY_BROKER": kind,
        "THIRDPARTY_NAME": name,
        "THIRDPARTY_REDIS_URL": redis_url,
        "THIRDPARTY_DATABASE_URL": postgres_url,
        "THIRDPARTY_RABBITMQ_URL": RABBITMQ_URL,
        "THIRDPARTY_NATS_URL": NATS_URL,
    }
    with app_module("thirdparty_app", app_env) as module:  # built anew for this broker
        app = ForeignApp(kind, name, tmp_path, module)
        await module.broker.startup()
        try:
            yield app
        finally:
            await module.broker.shutdown()
            app.stop_workers()
            await _delete_broker_objects(kind, name)


def tasklens_stack(tmp_path: Path, postgres_url: str, redis_url: str, **env: str) -> Stack:
    """TaskLens itself (`tasklens serve`), pointed at the foreign app's database and Redis."""
    return Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": postgres_url,
            "TASKLENS_REDIS_URL": redis_url,
            "TASKLENS_API_TOKENS": f"ops:operator:{OPERATOR_TOKEN}",
            **env,
        },
    )


def start_api(stack: Stack) -> Api:
    """`tasklens serve`, given the time a machine shared with other test runs may need."""
    api = stack.launch_api()
    api.wait_healthy(timeout=120)
    return api


@pytest.mark.parametrize("foreign", BROKERS, indirect=True)
async def test_a_foreign_app_is_logged_and_shown_live_with_each_retry_attempt(
    foreign: ForeignApp, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    app = foreign.tasks
    foreign.start_worker()
    stack = tasklens_stack(tmp_path, postgres_url, redis_url)
    try:
        api = await asyncio.to_thread(start_api, stack)
        async with LiveEvents(api.ws_url()) as live:
            added = await app.add.kiq(2, 3)
            charged = await app.charge.kiq("INV-7", card_token="tok_live_abc")
            refunded = await app.refund.kiq("INV-8")
            await live.wait_status(added.task_id, "success", timeout=60)
            await live.wait_status(refunded.task_id, "failed")
            await live.wait_status(charged.task_id, "success")
            # This process (the sender) publishes the first attempts' `pending` on its own
            # recorder's tick, which can come after the worker's whole lifecycle on a busy
            # machine: wait for them too before the socket closes.
            for sent in (added, refunded, charged):
                await live.wait_status(sent.task_id, "pending", attempt=1)

        # History, from TaskLens's API. The checks block, so they run in a thread: this
        # event loop must stay free to flush the client's log.
        def look_in_tasklens() -> None:
            add_task = api.wait_task(added.task_id, "success")
            assert add_task["task_name"] == "billing.add"
            assert add_task["result"] == 5
            assert add_task["params"] == {"_args": [2, 3]}
            assert add_task["queue"] == foreign.name

            refund = api.wait_task(refunded.task_id, "failed")
            [refund_attempt] = refund["attempts"]
            assert refund_attempt["error_message"] == (
                "ValueError: invoice INV-8 was never charged"
            )

            wait_for(
                lambda: (
                    len(api.task(charged.task_id).get("attempts", [])) == 3
                    and api.task(charged.task_id)["status"] == "success"
                ),
                timeout=30,
                what="the third attempt of billing.charge to be logged a success",
            )
            charge = api.task(charged.task_id)
            assert [a["status"] for a in charge["attempts"]] == ["failed", "failed", "success"]
            assert charge["attempts"][0]["error_message"] == (
                "ConnectionError: payment gateway timeout (attempt 1)"
            )
            assert "raise ConnectionError" in charge["attempts"][1]["error_traceback"]
            assert charge["params"] == {"_args": ["INV-7"], "card_token": "***"}
            assert charge["result"] == "charged INV-7"
            assert charge["queue"] == foreign.name

        await asyncio.to_thread(look_in_tasklens)
    finally:
        await asyncio.to_thread(stack.stop_all)

    # Live, each attempt's lifecycle, and the card token in no frame. The sender (this
    # process) and the worker publish their events apart: the worker's `running` and even
    # its final event may arrive before the sender's `pending`. And when the worker sends
    # the retry, then starts it before its `pending` is broadcast, the later state wins
    # (that event says `running`). A task that ran within one tick of the worker's recorder
    # is not seen `running` (its outcome carries its start).
    def lifecycle(statuses: list[str], end: str) -> bool:
        return sorted(statuses) in [sorted(s) for s in seen_live("pending", "running", end)]

    assert lifecycle(live.statuses(added.task_id), "success")
    assert lifecycle(live.statuses(refunded.task_id), "failed")
    charge_events: dict[int, list[str]] = {}
    for frame in live.frames:
        if frame.get("type") == "task_event" and frame["data"]["task_id"] == charged.task_id:
            charge_events.setdefault(frame["data"]["attempt"], []).append(frame["status"])
    assert lifecycle(charge_events[1], "failed")
    assert sorted(charge_events) == [1, 2, 3]
    for attempt, end in ((2, "failed"), (3, "success")):
        assert charge_events[attempt][-2:] in (["running", end], ["pending", end]), charge_events
        assert set(charge_events[attempt]) <= {"pending", "running", end}, charge_events
    assert "tok_live_abc" not in json.dumps(live.frames)


@pytest.mark.parametrize("foreign", BROKERS, indirect=True)
async def test_a_running_foreign_task_shows_its_progress_and_stops_when_cancelled(
    foreign: ForeignApp, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """Progress and cancel go through the middleware and TaskLens's Redis (its control
    channel), not through the broker: an operator stops a foreign task on any broker."""
    foreign.start_worker()
    stack = tasklens_stack(tmp_path, postgres_url, redis_url)
    try:
        api = await asyncio.to_thread(start_api, stack)
        sent = await foreign.tasks.export.kiq(1_000)

        def cancel_once_it_has_progressed() -> dict[str, Any]:
            wait_for(
                lambda: (api.task(sent.task_id).get("progress") or 0) > 0,
                timeout=90,
                what="the export to report progress",
            )
            running = api.task(sent.task_id)
            assert running["status"] == "running"
            assert running["progress_message"].startswith("page ")
            with api.client() as client:
                response = client.post(f"/api/v1/tasks/{sent.task_id}/cancel")
            assert response.status_code == 202, response.text
            assert response.json()["status"] == "cancelling"
            return api.wait_task(sent.task_id, "cancelled", timeout=30)

        cancelled = await asyncio.to_thread(cancel_once_it_has_progressed)
    finally:
        await asyncio.to_thread(stack.stop_all)
    [attempt] = cancelled["attempts"]
    assert attempt["error_message"].startswith("CancelledError")
    assert attempt["duration_ms"] < 200_000  # stopped, not run to its end


@pytest.mark.parametrize("foreign", ["rabbitmq", "nats"], indirect=True)
async def test_a_killed_foreign_worker_s_task_is_run_again_by_its_broker_as_the_same_attempt(
    foreign: ForeignApp, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """The broker, not TaskLens, delivers a killed worker's unacknowledged message again
    (RabbitMQ when the connection drops, JetStream after its 30 s ack wait); no label says
    so, so the rerun is logged on the same attempt, which ends with the rerun's outcome
    (while a TaskLens API's reaper runs, and may close it as `worker lost` meanwhile)."""
    foreign.start_worker()
    stack = tasklens_stack(tmp_path, postgres_url, redis_url)
    try:
        api = await asyncio.to_thread(start_api, stack)
        sent = await foreign.tasks.reconcile.kiq(6)
        await asyncio.to_thread(api.wait_task, sent.task_id, "running", 90)
        foreign.kill_worker(0)
        foreign.start_worker()
        done = await asyncio.to_thread(api.wait_task, sent.task_id, "success", 150)
    finally:
        await asyncio.to_thread(stack.stop_all)
    [attempt] = done["attempts"]
    assert attempt["error_message"] is None
    assert done["result"] == "reconciled"


@pytest.mark.parametrize("foreign", ["rabbitmq", "nats"], indirect=True)
async def test_a_foreign_task_waiting_in_its_broker_is_never_taken_for_a_lost_message(
    foreign: ForeignApp, postgres_url: str, redis_url: str
) -> None:
    """TaskLens's lost-message check closes a `pending` row whose message its own Redis
    streams no longer hold; a message waiting in RabbitMQ or JetStream is in none of them.
    Its row stays `pending` through many checks (past their grace and confirmation), then
    the foreign worker starts and runs it."""
    sent = await foreign.tasks.add.kiq(40, 2)
    engine = create_engine(postgres_url)
    lost = LostMessages(
        redis_url,
        streams=["tasklens:high", "tasklens", "tasklens:low"],
        group="tasklens",
        delayed_key=DELAYED,
        interval=0.1,
        grace=0.5,
        confirm_after=0.01,
    )
    reaper = Reaper(engine, max_task_seconds=1, redis_url=redis_url, lost_messages=lost)
    try:
        logged_by = time.monotonic() + 30  # the client writes its rows every 100 ms
        while await _status(engine, sent.task_id) != "pending":
            assert time.monotonic() < logged_by, "the sent task was never logged pending"
            await asyncio.sleep(0.1)
        closed = 0
        seen: set[str] = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            closed += await reaper.reap()
            seen.add(await _status(engine, sent.task_id))
            await asyncio.sleep(0.15)
        assert closed == 0
        assert seen == {"pending"}

        foreign.start_worker()
        wait_until = time.monotonic() + 60
        while await _status(engine, sent.task_id) != "success":
            assert time.monotonic() < wait_until, "the foreign worker never ran the task"
            closed += await reaper.reap()
            await asyncio.sleep(0.2)
        assert closed == 0
    finally:
        await reaper.stop()
        await engine.dispose()


async def test_a_plain_nats_broker_sends_with_the_labels_tasklens_adds(
    postgres_url: str, redis_url: str
) -> None:
    """taskiq-nats sends the labels as NATS headers, which take only strings: the labels
    TaskLens adds to every message are strings, so an app with no labels of its own sends
    on an unmodified JetStream broker."""
    name = f"plain_{uuid.uuid4().hex[:12]}"
    broker = PullBasedJetStreamBroker(
        NATS_URL, subject=name, stream_name=name, durable=name
    ).with_middlewares(TaskLensMiddleware(database_url=postgres_url, redis_url=redis_url))

    @broker.task(task_name="plain.ping")
    async def ping() -> str:
        return "pong"

    engine = create_engine(postgres_url)
    await broker.startup()
    try:
        sent = await ping.kiq()
        deadline = time.monotonic() + 30
        while await _status(engine, sent.task_id) != "pending":
            assert time.monotonic() < deadline, "no pending row for the sent task"
            await asyncio.sleep(0.1)
        [delivered] = await broker.consumer.fetch(batch=1, timeout=10)
        assert delivered.headers is not None
        assert float(delivered.headers["tasklens_enqueued_at"]) > 0
    finally:
        await broker.shutdown()
        await engine.dispose()
        await _delete_broker_objects("nats", name)


async def _status(engine: AsyncEngine, task_id: str) -> str:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT status FROM task_execution_logs WHERE task_id = :id "
                    "ORDER BY attempt DESC LIMIT 1"
                ),
                {"id": task_id},
            )
        ).first()
    return "none" if row is None else str(row.status)


@pytest.mark.parametrize("foreign", BROKERS, indirect=True)
async def test_a_foreign_task_longer_than_the_tasklens_timeout_runs_on_while_its_worker_beats(
    foreign: ForeignApp, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """TaskLens's reaper takes a `running` row older than its own longest task (here 1 s +
    0.5 s + 10 s) for a lost one; but the foreign worker's heartbeat lists this task, so the
    row stays `running` for all of its 25 s and ends `success`, never `failed` on the way;
    also when Redis loses the heartbeats midway (FLUSHDB), until the worker beats again."""
    foreign.start_worker()
    sent = await foreign.tasks.reconcile.kiq(25)

    def watch_in_tasklens() -> list[str]:
        stack = tasklens_stack(tmp_path, postgres_url, redis_url, TASKLENS_TASK_TIMEOUT_SECONDS="1")
        seen: list[str] = []
        running_since, running_until, flushed = 0.0, 0.0, False
        try:
            api = start_api(stack)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (not seen or seen[-1] != "success"):
                seen.append(api.task(sent.task_id).get("status", "none"))
                if seen[-1] == "running":
                    running_until = time.monotonic()
                    running_since = running_since or running_until
                if running_since and not flushed and time.monotonic() - running_since > 13:
                    with redis.Redis.from_url(redis_url) as client:
                        client.flushdb()  # past the age limit: only the heartbeat shields it
                    flushed = True
                time.sleep(0.5)
            assert flushed
            [attempt] = api.task(sent.task_id)["attempts"]
            assert attempt["error_message"] is None
            # It ran its whole 25 s. uvloop counts a timer from the loop's clock cached at the
            # start of the iteration (in whole milliseconds), which is before the middleware's
            # start stamp: so the sleep may end a few milliseconds short of 25 s by that stamp.
            assert attempt["duration_ms"] > 25_000 - 50
        finally:
            stack.stop_all()
        assert running_until - running_since > 12  # seen while older than the limit
        return seen

    seen = await asyncio.to_thread(watch_in_tasklens)
    assert seen[-1] == "success"
    assert "failed" not in seen, seen
