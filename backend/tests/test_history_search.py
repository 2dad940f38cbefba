"""Finding a task in the history: `q` (task id prefix, task name, params, error text),
the queue and worker filters, and sorting, in both databases; then, on PostgreSQL, that a
search over a large log is answered from the indexes of migrations 0009 and 0015, not a scan."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import STACKS, fresh_postgres, fresh_sqlite
from sqlalchemy.ext.asyncio import create_async_engine
from support import Api

from tasklens import monitoring
from tasklens.tracking.database import create_engine, session_factory, tasklens_schema
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.models import TaskExecutionLog, TaskStatus
from tasklens.tracking.recorder import build_recorder

NOW = datetime.now(UTC)


def _row(
    task_id: str,
    name: str,
    minutes_ago: int,
    *,
    params: dict[str, Any] | None = None,
    error: str | None = None,
    queue: str = "tasklens:default",
    worker: str = "host-a:1",
    duration: float = 10.0,
) -> LifecycleChange:
    created = NOW - timedelta(minutes=minutes_ago)
    return LifecycleChange(
        task_id=task_id,
        task_name=name,
        status=TaskStatus.FAILED if error else TaskStatus.SUCCESS,
        timestamp=as_time(created),
        created_at=as_time(created),
        params=params or {},
        queue=queue,
        worker=worker,
        started_at=as_time(created + timedelta(seconds=1)),
        completed_at=as_time(created + timedelta(seconds=2)),
        duration_ms=duration,
        error_message=error,
    )


ROWS = [
    _row("c0ffee01aa", "reports.build", 1, params={"user": "octo_cat"}, duration=300),
    _row("c0ffee02bb", "reports.build", 2, params={"user": "octoXcat"}, duration=5),
    _row("deadbeef01", "emails.send", 3, error="ValueError: 100% broken", duration=70),
    _row("deadbeef02", "emails.send", 4, error="ValueError: 100 broken", worker="host-b:2"),
    _row(
        "f00d000001",
        "imports.run",
        5,
        params={"path": "/data/Customers.csv"},
        queue="tasklens:high",
        duration=1000,
    ),
]


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    workdir: Path = tmp_path_factory.mktemp(f"search-{request.param}")
    stack = STACKS[request.param](workdir)
    try:
        running = stack.start_api()

        async def load() -> None:
            recorder = build_recorder(stack.env["TASKLENS_DATABASE_URL"], None)
            await recorder.store.upsert(ROWS)
            await recorder.store.close()

        asyncio.run(load())
        yield running
    finally:
        stack.stop_all()


def _history(api: Api, **params: Any) -> httpx.Response:
    with api.client() as client:
        return client.get("/api/v1/monitoring/history", params=params)


def _ids(api: Api, **params: Any) -> list[str]:
    response = _history(api, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total_count"] == len(body["items"]) and body["total_is_estimate"] is False
    return [item["task_id"] for item in body["items"]]


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("c0ffee0", ["c0ffee01aa", "c0ffee02bb"]),  # a task id prefix
        ("deadbeef02", ["deadbeef02"]),  # a whole id
        ("ffee", []),  # the middle of an id is not an id search
        ("emails", ["deadbeef01", "deadbeef02"]),  # part of a task name
        ("REPORTS.BUILD", ["c0ffee01aa", "c0ffee02bb"]),  # names case-insensitively
        ("customers.csv", ["f00d000001"]),  # inside params, case-insensitively
        ("octo_cat", ["c0ffee01aa"]),  # `_` is itself, not any character
        ("100%", ["deadbeef01"]),  # `%` is itself, not anything
        ("100 broken", ["deadbeef02"]),  # error text
        ("  c0ffee01  ", ["c0ffee01aa"]),  # pasted with spaces around
        ("nothing like it", []),
    ],
)
def test_search_finds_ids_by_prefix_and_names_params_errors_by_text(
    api: Api, q: str, found: list[str]
) -> None:
    assert _ids(api, q=q) == found  # newest first


def test_a_short_search_matches_ids_and_names_only(api: Api) -> None:
    assert _ids(api, q="de") == ["deadbeef01", "deadbeef02"]  # ids; no params text
    assert _ids(api, q="ru") == ["f00d000001"]  # imports.run's name


def test_queue_and_worker_filters_combine_with_the_rest(api: Api) -> None:
    assert _ids(api, queue="tasklens:high") == ["f00d000001"]
    assert _ids(api, worker="host-b:2") == ["deadbeef02"]
    assert _ids(api, q="emails", worker="host-a:1") == ["deadbeef01"]
    assert _ids(api, q="emails", status="success") == []


@pytest.mark.parametrize(
    ("sort", "first"),
    [
        ("-created", "c0ffee01aa"),
        ("created", "f00d000001"),
        ("-started", "c0ffee01aa"),
        ("started", "f00d000001"),
        ("-duration", "f00d000001"),
        ("duration", "c0ffee02bb"),
    ],
)
def test_sorted_by_created_started_or_duration(api: Api, sort: str, first: str) -> None:
    ids = _ids(api, sort=sort)
    assert ids[0] == first and sorted(ids) == sorted(r.task_id for r in ROWS)


def test_sorted_pages_walk_every_row_once(api: Api) -> None:
    pages = [_history(api, sort="-duration", page=p, page_size=2).json() for p in (1, 2, 3)]
    assert [p["total_pages"] for p in pages] == [3, 3, 3]
    durations = [item["duration_ms"] for page in pages for item in page["items"]]
    assert durations == [1000, 300, 70, 10, 5]


@pytest.mark.parametrize(
    ("params", "named"),
    [({"q": "x" * 201}, "q"), ({"sort": "name"}, "sort"), ({"sort": "--created"}, "sort")],
)
def test_a_bad_search_is_a_400_naming_the_field(
    api: Api, params: dict[str, str], named: str
) -> None:
    response = _history(api, **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(f"invalid {named}:")


def test_a_long_search_up_to_the_limit_is_answered(api: Api) -> None:
    assert _ids(api, q="x" * 200) == []


# --- PostgreSQL: the indexes answer a search on a large log --------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_params_are_found_in_every_status(tmp_path: Path, backend: str) -> None:
    """Migration 0015 indexes the params of terminal rows only; a task's params are still
    found while it waits or runs, and after it ended."""
    url = fresh_postgres() if backend == "postgres" else fresh_sqlite(tmp_path / "s.db")
    statuses = [TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.SUCCESS, TaskStatus.FAILED]
    rows = [
        LifecycleChange(
            task_id=f"needle-{status.value}",
            task_name="hay.stack",
            status=status,
            timestamp=as_time(NOW - timedelta(minutes=i)),
            created_at=as_time(NOW - timedelta(minutes=i)),
            params={"pin": f"zebra {status.value}"},
        )
        for i, status in enumerate(statuses)
    ]

    async def search(q: str) -> list[str]:
        recorder = build_recorder(url, None)
        await recorder.store.upsert(rows)
        await recorder.store.close()
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                where = monitoring.HistoryFilter(q=q)
                page = await monitoring.history(session, where, 1, 50)
            return [row.task_id for row in page.items]
        finally:
            await engine.dispose()

    assert asyncio.run(search("zebra")) == [f"needle-{s.value}" for s in statuses]
    for status in statuses:
        assert asyncio.run(search(f"zebra {status.value}")) == [f"needle-{status.value}"]


LARGE_LOG = 200_000


@pytest.fixture(scope="module")
def large_log() -> Iterator[str]:
    """A migrated database holding LARGE_LOG rows, all in yesterday's day partition
    (the other partitions stay empty: a scan of those costs nothing), analysed."""
    url = fresh_postgres()
    insert = f"""
        INSERT INTO task_execution_logs
            (task_id, task_name, status, params, queue, attempt, worker, error_message,
             started_at, completed_at, duration_ms, created_at, updated_at)
        SELECT md5(i::text), 'bulk.task' || (i % 20), 'failed',
               jsonb_build_object('record', i, 'label', md5((i * 7)::text)),
               'tasklens', 1, 'host-' || (i % 50) || ':1', 'KeyError: ' || md5((i * 3)::text),
               day + i * interval '0.4 seconds', day + i * interval '0.4 seconds',
               i % 1000, day + i * interval '0.4 seconds', now()
        FROM generate_series(1, {LARGE_LOG}) AS i,
             date_trunc('day', now() - interval '1 day') AS day
    """

    async def load() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(sa.text(f'SET search_path = "{tasklens_schema()}"'))
            await conn.execute(
                sa.text(
                    "SELECT tasklens_ensure_log_partitions("
                    "(now() - interval '1 day')::date, now()::date)"
                )
            )
            await conn.exec_driver_sql(insert)
            await conn.execute(sa.text("ANALYZE task_execution_logs"))
        await engine.dispose()

    asyncio.run(load())
    yield url


async def _plan(url: str, q: str) -> tuple[str, dict[str, str], str]:
    """The plan of the history's search for `q`; each day partition's index by name of
    the index of the log it was made from (the plan names the partitions' ones); and the
    partition holding the rows."""
    where = monitoring.HistoryFilter(q=q)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'SET search_path = "{tasklens_schema()}"'))
            query = where.apply(sa.select(TaskExecutionLog)).order_by(
                *monitoring.HistorySort.CREATED_DESC.order_by()
            )
            compiled = query.limit(50).compile(
                dialect=conn.dialect, compile_kwargs={"literal_binds": True}
            )
            plan = "\n".join(row[0] for row in await conn.execute(sa.text(f"EXPLAIN {compiled}")))
            made_from = await conn.execute(
                sa.text(
                    "SELECT c.relname, p.relname FROM pg_inherits i "
                    "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
                    "WHERE p.relkind = 'I'"
                )
            )
            full = await conn.scalar(
                sa.text("SELECT tableoid::regclass::text FROM task_execution_logs LIMIT 1")
            )
            return plan, {child: parent for child, parent in made_from.all()}, str(full)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("q", "index"),
    [
        ("c4ca4238a0", "uq_task_logs_task_attempt"),  # md5('1'): a task id's start
        ("8f14e45fceea", "ix_task_logs_params_trgm"),  # md5('7'): inside a label
        ("eccbc87e4b5c", "ix_task_logs_error_trgm"),  # md5('3'): inside an error message
    ],
)
def test_a_search_of_a_large_log_uses_its_indexes(large_log: str, q: str, index: str) -> None:
    plan, made_from, full = asyncio.run(_plan(large_log, q))
    used = {made_from.get(name, name) for name in re.findall(r"Index Scan on (\w+)", plan)}
    assert index in used, plan
    assert f"Seq Scan on {full} " not in plan, plan
