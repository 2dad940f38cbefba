"""The log's merge rule on both databases: writes from the client and the worker may land in
any order, and a row never moves back in its lifecycle nor loses what it knew."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import orjson
import pytest
import sqlalchemy as sa
from conftest import fresh_sqlite
from support import free_port
from taskiq import InMemoryBroker, TaskiqMessage, TaskiqResult

from tasklens.reaper import LOST_ERROR, Reaper
from tasklens.tracking import middleware as middleware_module
from tasklens.tracking.database import create_engine, own_name
from tasklens.tracking.event_stream import (
    InProcessEventStream,
    RedisEventStream,
    parse_event_id,
)
from tasklens.tracking.lifecycle import (
    LAST_TIME,
    LifecycleChange,
    as_datetime,
    as_time,
    label_time,
    running_change,
    succeeded_change,
)
from tasklens.tracking.log_store import _FIELDS, PostgresLogStore, _json_row
from tasklens.tracking.middleware import ENQUEUED_AT_LABEL, TaskLensMiddleware
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.recorder import (
    SPARSE_TICK_CHANGES,
    SPARSE_TICK_DIVISOR,
    LifecycleRecorder,
    NotWritten,
    build_recorder,
    tick_interval,
)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return fresh_sqlite(tmp_path / "log.db")


@pytest.fixture
async def recorder(database_url: str) -> AsyncIterator[tuple[LifecycleRecorder, str]]:
    url = database_url
    rec = build_recorder(url, None)
    yield rec, url
    await rec.store.close()


async def _rows(url: str) -> list[dict[str, object]]:
    engine = create_engine(url)
    log = own_name("task_execution_logs", engine.dialect)
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.text(
                "SELECT task_id, attempt, status, params, queue, worker, started_at, "
                f"duration_ms, created_at FROM {log} ORDER BY task_id, attempt"
            )
        )
        rows = [dict(r._mapping) for r in result]
    await engine.dispose()
    return rows


T0 = as_time(datetime(2026, 1, 1, tzinfo=UTC))


def change(status: TaskStatus, seconds: float, **fields: Any) -> LifecycleChange:
    return LifecycleChange(
        task_id="t1",
        task_name="job",
        status=status,
        timestamp=T0 + seconds,
        **fields,
    )


async def test_a_late_pending_write_does_not_undo_success(
    recorder: tuple[LifecycleRecorder, str],
) -> None:
    rec, url = recorder
    await rec.store.upsert(
        [change(TaskStatus.SUCCESS, 2, worker="w:1", duration_ms=5.0, started_at=T0, created_at=T0)]
    )
    await rec.store.upsert(
        [change(TaskStatus.PENDING, 0, params={"x": 1}, queue="q", created_at=T0)]
    )
    [row] = await _rows(url)
    assert row["status"] == "success"
    assert row["worker"] == "w:1" and row["duration_ms"] == 5.0
    assert row["queue"] == "q"


async def test_a_workers_outcome_written_before_the_senders_rows_lands_on_the_same_row(
    recorder: tuple[LifecycleRecorder, str],
) -> None:
    """After a database outage the rows come back in any order: a worker's `success` written
    at once, the `running` and `pending` that waited in the spill drained after it. With the
    sender's enqueue stamp the outcome knows the row's created_at (the partition key), so all
    three are one row, not one row each (seen: 25 extra rows in a 10,000-task outage)."""
    rec, url = recorder
    stamp = T0
    done = T0 + 2
    await rec.store.upsert(
        [succeeded_change("t1", "job", 1, done, done - 1, 1000.0, 7, "w:1", stamp)]
    )
    await rec.store.upsert(
        [
            running_change("t1", "job", 1, done - 1, stamp, None, "q", "w:1"),
        ]
    )
    await rec.store.upsert(
        [change(TaskStatus.PENDING, 0, attempt=1, params={"x": 1}, queue="q", created_at=T0)]
    )
    [row] = await _rows(url)
    params = row["params"]
    assert row["status"] == "success"
    assert (json.loads(params) if isinstance(params, str) else params) == {"x": 1}


async def test_changes_in_one_batch_coalesce_into_one_row(
    recorder: tuple[LifecycleRecorder, str],
) -> None:
    rec, url = recorder
    rec.record(change(TaskStatus.PENDING, 0, params={"x": 1}, created_at=T0))
    rec.record(change(TaskStatus.RUNNING, 1, worker="w:1", started_at=T0))
    rec.record(change(TaskStatus.SUCCESS, 2, duration_ms=1000.0))
    rec.record(change(TaskStatus.PENDING, 3, attempt=2))
    await rec.flush()
    assert rec.stats.rows_written == 2
    first, second = await _rows(url)
    params = first["params"]
    assert (params if isinstance(params, dict) else json.loads(str(params))) == {"x": 1}
    assert (first["status"], first["worker"], first["duration_ms"]) == ("success", "w:1", 1000)
    assert (second["attempt"], second["status"]) == (2, "pending")


async def test_every_field_of_a_change_reaches_its_column(
    recorder: tuple[LifecycleRecorder, str],
) -> None:
    rec, url = recorder
    failed = change(
        TaskStatus.FAILED,
        5,
        attempt=3,
        created_at=T0,
        params={"record_id": 7},
        queue="tasklens:high",
        worker="host:42",
        progress=0.5,
        progress_message="half way",
        result={"partial": [1, 2]},
        started_at=T0 + 1,
        completed_at=T0 + 5,
        duration_ms=4000.0,
        error_message="boom",
        error_traceback="Traceback: boom",
        run_at=T0 + 9,
    )
    rec.record(failed)
    await rec.flush()
    engine = create_engine(url)
    log = own_name("task_execution_logs", engine.dialect)
    async with engine.connect() as conn:
        [row] = (await conn.execute(sa.text(f"SELECT * FROM {log}"))).mappings()
    await engine.dispose()

    def stored(name: str, value: object) -> object:
        if name in {"params", "result"} and isinstance(value, str):
            return json.loads(value)  # SQLite keeps JSON as text
        datetimes = {"created_at", "started_at", "completed_at", "run_at"}
        if name in datetimes and isinstance(value, str):  # SQLite: naive UTC text
            return as_time(datetime.fromisoformat(value).replace(tzinfo=UTC))
        return as_time(value) if isinstance(value, datetime) else value

    expected = {
        f.name: getattr(failed, f.name)
        for f in dataclasses.fields(LifecycleChange)
        if f.name != "timestamp"
    }
    assert {name: stored(name, row[name]) for name in expected} == expected
    assert row["updated_at"] is not None


def test_a_batch_row_holds_every_field_where_the_statement_reads_it() -> None:
    """PostgreSQL reads a batch row by position: `_json_row` spells the order out by hand."""
    values: dict[str, Any] = {
        f.name: f"value of {f.name}" if f.name != "created_at" else None
        for f in dataclasses.fields(LifecycleChange)
    }
    change = LifecycleChange(**values)
    row = _json_row(change)
    by_key = dict(zip([key for _, key, _ in _FIELDS] + ["known"], row, strict=True))
    assert by_key.pop("cr") == "value of timestamp" and by_key.pop("known") is False
    assert by_key == {key: getattr(change, column) for column, key, _ in _FIELDS[:-1]}
    change.created_at = 7.0
    assert _json_row(change)[-2:] == (7.0, True)


def test_a_later_change_keeps_every_field_it_does_not_know() -> None:
    """Every field of an earlier change survives into the row, whichever comes later."""
    identity = {"task_id", "task_name", "status", "timestamp", "attempt"}
    known = {
        f.name: f"value of {f.name}"
        for f in dataclasses.fields(LifecycleChange)
        if f.name not in identity
    }
    earlier = change(TaskStatus.FAILED, 1, **known)
    later = change(TaskStatus.RUNNING, 2).absorb(earlier)
    assert {name: getattr(later, name) for name in known} == known
    assert later.status == TaskStatus.FAILED  # never back in the lifecycle


async def test_a_late_success_over_the_reapers_failed_keeps_none_of_its_error(
    recorder: tuple[LifecycleRecorder, str],
) -> None:
    """The reaper took a slow task for lost; its worker then finished it. The row ends
    `success`, with no "worker lost" left on it, and the success's completion time."""
    rec, url = recorder
    running = change(TaskStatus.RUNNING, 0, worker="w:1", started_at=T0, created_at=T0)
    await rec.store.upsert([running])
    reaper_engine = create_engine(url)
    try:  # without Redis, any worker but this process is taken for a dead one
        assert await Reaper(reaper_engine, max_task_seconds=600, redis_url=None).reap() == 1
    finally:
        await reaper_engine.dispose()
    assert await _status_and_error(url) == ("failed", LOST_ERROR)
    success = change(TaskStatus.SUCCESS, 7, worker="w:1", duration_ms=7000.0)
    success.completed_at = success.timestamp
    await rec.store.upsert([success])

    reaped = change(TaskStatus.FAILED, 5, error_message=LOST_ERROR, error_traceback="…")
    in_memory = dataclasses.replace(success).absorb(reaped)
    assert (in_memory.status, in_memory.error_message) == (TaskStatus.SUCCESS, None)
    assert in_memory.error_traceback is None

    engine = create_engine(url)
    log = own_name("task_execution_logs", engine.dialect)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(f"SELECT status, error_message, error_traceback, completed_at FROM {log}")
            )
        ).one()
    await engine.dispose()
    assert (row.status, row.error_message, row.error_traceback) == ("success", None, None)
    completed = row.completed_at  # SQLite: the text the log store wrote
    completed = datetime.fromisoformat(completed) if isinstance(completed, str) else completed
    completed = completed.replace(tzinfo=completed.tzinfo or UTC)
    assert success.completed_at is not None
    assert completed == as_datetime(success.completed_at)

    await rec.store.upsert([change(TaskStatus.FAILED, 9, error_message="Boom: real")])
    assert await _status_and_error(url) == ("failed", "Boom: real")  # terminal over terminal
    await rec.store.upsert([change(TaskStatus.RUNNING, 10, progress=0.5)])
    assert await _status_and_error(url) == ("failed", "Boom: real")  # and never undone


async def _status_and_error(url: str) -> tuple[str, str | None]:
    engine = create_engine(url)
    log = own_name("task_execution_logs", engine.dialect)
    async with engine.connect() as conn:
        row = (await conn.execute(sa.text(f"SELECT status, error_message FROM {log}"))).one()
    await engine.dispose()
    return row.status, row.error_message


async def test_a_failed_write_is_kept_and_retried() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls: list[int] = []

        async def upsert(self, changes: list[LifecycleChange]) -> None:
            self.calls.append(len(changes))
            if len(self.calls) == 1:
                raise ConnectionError("database restarting")

        async def close(self) -> None:
            return None

    store = Flaky()
    rec = LifecycleRecorder(store, None)  # type: ignore[arg-type]
    rec.record(change(TaskStatus.RUNNING, 1))
    await rec.flush()
    rec.record(change(TaskStatus.SUCCESS, 2))
    await rec.flush()
    assert store.calls == [1, 1]  # the same row, now in its latest state
    assert rec.stats.write_failures == 1 and rec.stats.rows_written == 1


async def test_the_buffer_is_bounded_and_sheds_non_terminal_rows_first() -> None:
    class Down:
        async def upsert(self, changes: list[LifecycleChange]) -> None:
            raise ConnectionError("down")

        async def close(self) -> None:
            return None

    rec = LifecycleRecorder(Down(), None, buffer_max=100)  # type: ignore[arg-type]
    for i in range(100):
        rec.record(
            LifecycleChange(
                task_id=f"done-{i}", task_name="j", status=TaskStatus.SUCCESS, timestamp=T0
            )
        )
    for i in range(50):
        rec.record(
            LifecycleChange(
                task_id=f"run-{i}", task_name="j", status=TaskStatus.RUNNING, timestamp=T0
            )
        )
    await rec.flush()  # the database is down: the rows stay, up to the bound
    assert rec.backlog == 100
    assert rec.stats.rows_dropped == 50
    assert all(change.task_id.startswith("done-") for change in rec._rows.values())


async def test_hourly_counts_follow_every_insert_update_and_delete(
    recorder: tuple[LifecycleRecorder, str],
) -> None:
    rec, url = recorder
    names, statuses = ("a", "b"), list(TaskStatus)
    for i in range(60):  # spread over three hours, through pending, running, terminal
        created = T0 + 180 * i
        for step, status in enumerate(
            (TaskStatus.PENDING, TaskStatus.RUNNING, statuses[2 + i % 3])
        ):
            rec.record(
                LifecycleChange(
                    task_id=f"t{i}",
                    task_name=names[i % 2],
                    status=status,
                    timestamp=created + step,
                    created_at=created,
                    duration_ms=float(i) if status.is_terminal else None,
                )
            )
            if i % 4 == 0:
                await rec.flush()  # some rows go through several writes, some through one
    await rec.flush()
    engine = create_engine(url)
    log = own_name("task_execution_logs", engine.dialect)
    counts = own_name("task_log_counts", engine.dialect)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DELETE FROM {log} WHERE task_id LIKE 't1%'"))
        logged = (
            await conn.execute(
                sa.text(
                    "SELECT task_name, status, count(*), count(duration_ms), "
                    f"coalesce(sum(duration_ms), 0) FROM {log} "
                    "GROUP BY task_name, status"
                )
            )
        ).all()
        counted = (
            await conn.execute(
                sa.text(
                    "SELECT task_name, status, sum(count), sum(duration_count), sum(duration_sum) "
                    f"FROM {counts} GROUP BY task_name, status HAVING sum(count) > 0"
                )
            )
        ).all()
        buckets = (
            await conn.execute(
                sa.text(f"SELECT count(DISTINCT bucket) FROM {counts} WHERE count > 0")
            )
        ).scalar()
    await engine.dispose()
    assert sorted(map(tuple, logged)) == sorted(
        (n, s, int(c), int(dc), float(ds)) for n, s, c, dc, ds in counted
    )
    assert len(logged) == 6  # 2 names x 3 terminal statuses
    assert buckets == 3


async def test_a_row_the_database_refuses_is_set_apart_and_the_rest_is_written(
    postgres_url: str,
) -> None:
    """A value PostgreSQL refuses (here a task name past varchar(255)) fails its whole batch;
    retrying that batch would fail forever and hold every later row back."""
    rec = build_recorder(postgres_url, None)
    good = [
        LifecycleChange(task_id=f"ok-{i}", task_name="job", status=TaskStatus.SUCCESS, timestamp=T0)
        for i in range(9)
    ]
    bad = LifecycleChange(
        task_id="bad", task_name="x" * 300, status=TaskStatus.FAILED, timestamp=T0
    )
    for c in [*good[:4], bad, *good[4:]]:
        rec.record(c)
    await rec.flush()
    rec.record(
        LifecycleChange(task_id="later", task_name="job", status=TaskStatus.PENDING, timestamp=T0)
    )
    await rec.flush()
    await rec.store.close()

    ids = [str(row["task_id"]) for row in await _rows(postgres_url)]
    assert sorted(ids) == sorted([*(c.task_id for c in good), "later"])
    assert (rec.stats.rows_rejected, rec.backlog) == (1, 0)


async def test_a_recorders_events_reach_stream_readers_as_the_full_events(redis_url: str) -> None:
    """The worker sends its changes as flat arrays; what a reader gets is the event."""
    every_field = change(
        TaskStatus.FAILED,
        2,
        attempt=3,
        params={"repo": "x/y", "deep": [1, {"a": None}]},
        queue="default",
        worker="host:1",
        progress=0.5,
        progress_message="stage 2 of 4",
        duration_ms=12.5,
        error_message="ValueError: ünïcode <b>",
    )
    changes = [change(TaskStatus.RUNNING, 1, worker="host:1"), every_field]
    stream = RedisEventStream(redis_url)
    reader = stream.subscribe(ready := asyncio.Event())
    assert isinstance(reader, AsyncGenerator)
    try:
        first = asyncio.ensure_future(anext(reader))
        await ready.wait()
        await stream.publish_changes(changes)
        events = await asyncio.wait_for(first, 10)
    finally:
        await reader.aclose()
        await stream.close()
    assert [parse_event_id(event.pop("id")) for event in events] == [(ANY, ANY, 0), (ANY, ANY, 1)]
    assert events == [orjson.loads(orjson.dumps(c.to_event())) for c in changes]


async def test_rows_are_written_as_soon_as_the_tasks_stop_not_at_the_write_interval(
    postgres_url: str,
) -> None:
    rec = build_recorder(postgres_url, None, write_interval=30.0)
    await rec.start()
    try:
        rec.record(change(TaskStatus.SUCCESS, 1, created_at=T0))
        await asyncio.sleep(0.5)  # a few 25 ms ticks, far less than the 30 s interval
        assert rec.stats.rows_written == 1
        assert [row["status"] for row in await _rows(postgres_url)] == ["success"]
    finally:
        await rec.stop()


async def test_an_idle_recorder_sleeps_until_the_next_change_then_writes_it_at_once(
    postgres_url: str,
) -> None:
    rec = build_recorder(postgres_url, None, write_interval=30.0)
    await rec.start()
    try:
        rec.record(change(TaskStatus.RUNNING, 1, created_at=T0))
        await asyncio.sleep(0.3)
        assert rec.stats.rows_written == 1
        ticks = rec.stats.ticks
        await asyncio.sleep(0.3)  # 12 event intervals
        assert rec.stats.ticks == ticks  # no turns while there is nothing to do
        rec.record(change(TaskStatus.SUCCESS, 2, created_at=T0))
        await asyncio.sleep(0.1)  # far less than the 30 s write interval
        assert rec.stats.rows_written == 2
        assert [row["status"] for row in await _rows(postgres_url)] == ["success"]
    finally:
        await rec.stop()


async def test_a_change_that_cannot_be_built_is_dropped_and_the_rest_is_written(
    postgres_url: str,
) -> None:
    def broken(task_id: str) -> LifecycleChange:
        raise ValueError(f"no change for {task_id}")

    rec = build_recorder(postgres_url, None)
    rec.record_later((broken, "t0"))
    rec.record(change(TaskStatus.SUCCESS, 1, created_at=T0))
    await rec.flush()
    await rec.store.close()
    assert rec.stats.rows_rejected == 1
    assert [row["status"] for row in await _rows(postgres_url)] == ["success"]


async def test_written_commits_what_was_recorded_at_once_not_at_the_write_interval(
    database_url: str,
) -> None:
    rec = build_recorder(database_url, None, event_interval=5.0, write_interval=30.0)
    await rec.start()
    try:
        rec.record(change(TaskStatus.RUNNING, 1, created_at=T0))
        await asyncio.sleep(0.2)  # no tick for 5 s, no write due for 30 s
        rec.record(change(TaskStatus.PENDING, 1, created_at=T0, attempt=2))
        await asyncio.wait_for(rec.written(timeout=10), 5)
        assert [row["status"] for row in await _rows(database_url)] == ["running", "pending"]
        assert rec.stats.flushes == 1  # both in one write
    finally:
        await rec.stop()


async def test_written_gives_up_when_the_database_is_away_and_the_rows_stay_buffered() -> None:
    nobody = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/tasklens"
    rec = build_recorder(nobody, None)
    await rec.start()
    try:
        rec.record(change(TaskStatus.PENDING, 1, created_at=T0))
        with pytest.raises(NotWritten):
            await rec.written(timeout=1.0)
        assert rec.backlog == 1 and rec.stats.write_failures >= 1
    finally:
        await rec.stop(timeout=0.5)


async def test_rows_in_a_write_under_way_still_count_as_not_yet_written() -> None:
    """A database that accepts the connection and never answers: the row is in a write for
    seconds, and the backlog (the workers list's buffered rows) still shows it."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; returns when the client hangs up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rec = build_recorder(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/tasklens", None)
    await rec.start()
    try:
        rec.record(change(TaskStatus.PENDING, 1, created_at=T0))
        await asyncio.sleep(0.5)  # a tick, then the write: connecting, for up to 5 s
        assert rec.stats.ticks >= 1 and rec.stats.write_failures == 0  # still in the write
        assert rec.backlog == 1
    finally:
        await rec.stop(timeout=0.5)
        server.close()


async def test_changes_recorded_during_a_slow_write_are_published_as_it_ends(
    postgres_url: str, redis_url: str
) -> None:
    """The live events' ticks start an interval apart, not an interval after the tick's
    write: a change recorded while the table is locked goes out as soon as the write ends,
    not another interval later (here 2 s)."""
    stream = RedisEventStream(redis_url)
    reader = stream.subscribe(ready := asyncio.Event())
    assert isinstance(reader, AsyncGenerator)
    rec = build_recorder(postgres_url, redis_url, event_interval=2.0, write_interval=0.0)
    locker = create_engine(postgres_url)
    try:
        next_events = asyncio.ensure_future(anext(reader))
        await ready.wait()
        await rec.start()
        async with locker.connect() as connection:
            await connection.execute(sa.text("LOCK TABLE task_execution_logs IN SHARE MODE"))
            rec.record(change(TaskStatus.RUNNING, 1, created_at=T0))  # its write waits
            assert [e["data"]["task_id"] for e in await asyncio.wait_for(next_events, 10)] == ["t1"]
            next_events = asyncio.ensure_future(anext(reader))
            rec.record(dataclasses.replace(change(TaskStatus.RUNNING, 2), task_id="t2"))
            await asyncio.sleep(2.5)  # past the 2 s interval, the first write still waits
            assert not next_events.done()
            await connection.commit()  # the lock goes, the write ends
        released = asyncio.get_running_loop().time()
        assert [e["data"]["task_id"] for e in await asyncio.wait_for(next_events, 10)] == ["t2"]
        assert asyncio.get_running_loop().time() - released < 1.0
    finally:
        await rec.stop()
        await reader.aclose()
        await stream.close()
        await locker.dispose()


def test_a_busy_tick_keeps_the_interval_and_a_sparse_one_comes_sooner() -> None:
    """Busy and sparse hold each other in place: a busy tick's rate, seen through a sparse
    tick's shorter window, is still busy only from five times the rate where it turns sparse."""
    assert tick_interval(0.025, SPARSE_TICK_CHANGES) == 0.025
    assert tick_interval(0.025, 10_000) == 0.025
    sparse = tick_interval(0.025, SPARSE_TICK_CHANGES - 1)
    assert sparse == pytest.approx(0.025 / SPARSE_TICK_DIVISOR)
    assert tick_interval(0.025, 0) == sparse
    turns_sparse_below = SPARSE_TICK_CHANGES / 0.025  # changes/s, seen by a busy tick
    turns_busy_from = SPARSE_TICK_CHANGES / sparse  # seen by a sparse one
    assert turns_busy_from == pytest.approx(SPARSE_TICK_DIVISOR * turns_sparse_below)


async def test_sparse_changes_go_out_within_a_fraction_of_the_interval_and_rows_still_batch(
    database_url: str,
) -> None:
    """A change every 100 ms with a 500 ms event interval (fewer than SPARSE_TICK_CHANGES a
    tick): each is published within the sparse tick (100 ms), not half an interval later on
    average; the rows still go in a write per write interval, not one per tick."""
    events = InProcessEventStream()
    reader = events.subscribe(ready := asyncio.Event())
    assert isinstance(reader, AsyncGenerator)
    rec = build_recorder(database_url, None, events=events, event_interval=0.5, write_interval=0.5)
    loop = asyncio.get_running_loop()
    recorded_at: dict[str, float] = {}
    waits: list[float] = []

    async def read() -> None:
        async for batch in reader:
            waits.extend(loop.time() - recorded_at[e["data"]["task_id"]] for e in batch)

    reading = asyncio.ensure_future(read())
    await ready.wait()
    await rec.start()
    try:
        started = loop.time()
        for i in range(20):
            task_id = f"t{i}"
            recorded_at[task_id] = loop.time()
            rec.record(dataclasses.replace(change(TaskStatus.RUNNING, i), task_id=task_id))
            await asyncio.sleep(0.1)
        await rec.written(timeout=10)
        elapsed = loop.time() - started
        assert len(waits) == 20
        assert sorted(waits)[10] < 0.15  # the median: a 500 ms tick would make it ~250 ms
        assert rec.stats.flushes <= elapsed / 0.5 + 2
        assert len(await _rows(database_url)) == 20
    finally:
        await rec.stop()
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)


def test_a_garbled_enqueue_label_falls_back_and_never_reaches_a_store() -> None:
    """Any sender may set the label: a value no datetime can hold (past year 9999, before
    1970, NaN, not a number) would fail its row's whole batch in the store."""
    fallback = 1764496800.5
    assert label_time(repr(1764496800.123456), fallback) == 1764496800.123456
    for garbled in ("not a time", None, "nan", "inf", "-1", "1e300", [1], "253402300800"):
        assert label_time(garbled, fallback) == fallback
    run = running_change("t", "job", 1, 1764496801.0, "1e300", None, "q", "w")
    assert run.created_at == 1764496801.0 and as_datetime(run.created_at).year == 2025


async def test_the_postgres_statement_rounds_times_as_python_does(postgres_url: str) -> None:
    """created_at is part of the row's key: the worker's write, converted by the statement,
    must name the microsecond the sender's, converted by Python (SQLite, earlier releases),
    named. Half-microsecond stamps and their neighbours are where roundings differ."""
    moments = [1764496800 + (k + 0.5) / 1e6 for k in range(0, 1_000_000, 997)]
    moments += [math.nextafter(m, 0) for m in moments] + [math.nextafter(m, 2e9) for m in moments]
    moments += [0.0, 1764496800.9999995, LAST_TIME - 0.5]
    store = PostgresLogStore(postgres_url)
    try:
        await store.upsert(
            [
                LifecycleChange(f"t{i:05}", "job", TaskStatus.PENDING, m, created_at=m, run_at=m)
                for i, m in enumerate(moments)
            ]
        )
    finally:
        await store.close()
    rows = await _rows(postgres_url)
    assert [row["created_at"] for row in rows] == [as_datetime(m) for m in moments]


class _Clock:
    """The middleware's clock, the same ticks for each run of a case."""

    def __init__(self) -> None:
        self.now = 1764496800.0

    def time(self) -> float:
        self.now += 0.0007
        return self.now

    def perf_counter(self) -> float:
        return self.now


async def _run_through_the_hooks(
    message: TaskiqMessage,
    outcome: TaskiqResult[Any],
    monkeypatch: pytest.MonkeyPatch,
    *,
    tick_per_change: bool,
    progress: bool = False,
) -> tuple[LifecycleChange, list[tuple[Any, ...]]]:
    """A task's hooks as a worker runs them, then its row and live events: each change in a
    tick of its own (the task ran across ticks), or all of them in one."""
    monkeypatch.setattr(middleware_module, "time", _Clock())
    recorder = LifecycleRecorder(None, None)  # type: ignore[arg-type]  # merges only, no I/O
    tracker = TaskLensMiddleware(recorder=recorder)
    tracker.set_broker(InMemoryBroker())
    tracker.worker_id = "host:1"
    message = message.model_copy(deep=True)  # the hooks add labels
    events: list[tuple[Any, ...]] = []

    def tick(every_change: bool = True) -> None:
        if every_change:
            events.extend(c.to_event_row() for c in recorder._merge_recorded())

    await tracker.pre_execute(message)
    tick(tick_per_change)
    if progress:
        tracker.record_progress(message, 0.5, "half way")
        tick(tick_per_change)
    await tracker.post_execute(message, outcome)
    tick()
    [row] = recorder._rows.values()
    return row, events


def _message(labels: dict[str, Any], *args: Any, **kwargs: Any) -> TaskiqMessage:
    return TaskiqMessage(
        task_id="t1", task_name="job", labels=labels, args=list(args), kwargs=kwargs
    )


STAMP = {ENQUEUED_AT_LABEL: repr(1764496799.5)}
SUCCEEDED: TaskiqResult[Any] = TaskiqResult(is_err=False, return_value=None, execution_time=0.0)


@pytest.mark.parametrize(
    ("message", "outcome"),
    [
        pytest.param(_message(STAMP), SUCCEEDED, id="no-args"),
        pytest.param(
            _message(STAMP | {"queue_name": "mail"}, "to@x", password="hunter2"),
            TaskiqResult(is_err=False, return_value={"sent": ["to@x"]}, execution_time=0.0),
            id="args-and-a-result",
        ),
        pytest.param(_message(STAMP | {"_retries": "2"}, 7), SUCCEEDED, id="a-retry"),
        pytest.param(_message({}), SUCCEEDED, id="sent-without-tasklens"),
        pytest.param(_message({ENQUEUED_AT_LABEL: "garbled"}), SUCCEEDED, id="garbled-stamp"),
        pytest.param(
            _message(STAMP, 3),
            TaskiqResult(
                is_err=True, return_value=None, execution_time=0.0, error=ValueError("boom")
            ),
            id="a-failure",
        ),
    ],
)
async def test_a_task_that_runs_within_one_tick_gets_the_row_it_gets_across_ticks(
    message: TaskiqMessage, outcome: TaskiqResult[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its outcome is built carrying its `running` (one change, one live event), and must
    make exactly the row `outcome.absorb(running)` makes when the two come a tick apart."""
    across, events_across = await _run_through_the_hooks(
        message, outcome, monkeypatch, tick_per_change=True
    )
    within, events_within = await _run_through_the_hooks(
        message, outcome, monkeypatch, tick_per_change=False
    )
    assert within == across
    assert [event[1] for event in events_across] == ["running", across.status]
    assert events_within == events_across[1:]  # pending -> outcome in the live feed


async def test_a_task_that_reports_progress_within_one_tick_is_seen_running_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its `running` goes out before its progress, in order, as across ticks."""
    message = _message(STAMP, 3)
    across, events_across = await _run_through_the_hooks(
        message, SUCCEEDED, monkeypatch, tick_per_change=True, progress=True
    )
    within, events_within = await _run_through_the_hooks(
        message, SUCCEEDED, monkeypatch, tick_per_change=False, progress=True
    )
    assert within == across

    def untimed(events: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [event[:2] + event[3:] for event in events]  # progress reads the wall clock

    assert untimed(events_within) == untimed(events_across)
    assert [event[1] for event in events_within] == ["running", "running", "success"]
