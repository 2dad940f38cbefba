"""Batched upserts of lifecycle rows: one round trip per batch, never one per event.

PostgreSQL gets a single `INSERT … SELECT … FROM jsonb_array_elements(…) ON CONFLICT` over raw
asyncpg: one statement per batch, as the performance baseline measured cheapest, with the
rows sent as one JSON document so the worker's own CPU is spent on tasks rather than on
encoding typed arrays. SQLite gets an executemany upsert.
Both apply the same merge rule as `LifecycleChange.absorb`, so rows written by the
client (pending) and the worker (running, finished) in any order end in the right state.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import orjson
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tasklens.tracking.database import connect_postgres, own_name
from tasklens.tracking.lifecycle import LifecycleChange, as_datetime, json_without_nul, without_nul

TABLE = "task_execution_logs"
# How long closing the connection may wait for the server's goodbye before the socket is
# dropped: a stopping worker must not wait on a database that does not answer.
CLOSE_TIMEOUT_SECONDS = 2.0
# The one list of what a write sets: each column with its key in the JSON batch and its
# PostgreSQL type there. Every column but created_at is the LifecycleChange field of its
# name; created_at is the change's own, or its timestamp. updated_at is the write's time.
_FIELDS = (
    ("task_id", "t", "text"),
    ("attempt", "a", "int"),
    ("task_name", "n", "text"),
    ("status", "s", "text"),
    ("params", "p", "jsonb"),
    ("queue", "q", "text"),
    ("worker", "w", "text"),
    ("progress", "pr", "float8"),
    ("progress_message", "pm", "text"),
    ("result", "r", "jsonb"),
    ("started_at", "sa", "timestamptz"),
    ("completed_at", "ca", "timestamptz"),
    ("duration_ms", "d", "float8"),
    ("error_message", "em", "text"),
    ("error_traceback", "et", "text"),
    ("run_at", "ra", "timestamptz"),
    ("created_at", "cr", "timestamptz"),
)
COLUMNS = (*(column for column, _, _ in _FIELDS), "updated_at")
_values = operator.attrgetter(*(column for column, _, _ in _FIELDS))
_KEEP_FIRST = {"task_id", "attempt", "created_at"}
_OUTCOME_ERRORS = {"error_message", "error_traceback"}  # only a terminal write sets them
_RANK_SQL = "CASE {} WHEN 'pending' THEN 0 WHEN 'running' THEN 1 ELSE 2 END"
# A change's time (Unix seconds, a float in the JSON batch) as a timestamptz, rounded to the
# microsecond exactly as Python's `datetime.fromtimestamp` (lifecycle.as_datetime) rounds it:
# the whole seconds, then the fraction's microseconds half to even (`round` of a float8 is
# `rint`). created_at is part of the row's key: a worker's write must name the very moment
# that the sender's `pending` row, written by another process or store, named.
_PG_TIME = "to_timestamp(floor({0})) + round(({0} - floor({0})) * 1e6) * interval '1 microsecond'"


def _merge_set_clause(table: str = TABLE) -> str:
    """`ON CONFLICT … DO UPDATE SET` that never moves a row backwards in its lifecycle;
    `table` is the log's name as the statement spells it (database.own_name)."""
    parts = [
        f"status = CASE WHEN {_RANK_SQL.format('excluded.status')} >= "
        f"{_RANK_SQL.format(f'{table}.status')} THEN excluded.status ELSE {table}.status END",
        "updated_at = excluded.updated_at",
    ]
    # A terminal write is the whole outcome: its error (or none) replaces the row's, so a
    # late `success` over the reaper's `failed` does not keep "worker lost".
    terminal = f"{_RANK_SQL.format('excluded.status')} = 2"
    parts += [
        f"{col} = CASE WHEN {terminal} THEN excluded.{col} "
        f"ELSE COALESCE(excluded.{col}, {table}.{col}) END"
        if col in _OUTCOME_ERRORS
        else f"{col} = COALESCE(excluded.{col}, {table}.{col})"
        for col in COLUMNS
        if col not in _KEEP_FIRST and col not in {"status", "updated_at"}
    ]
    return ", ".join(parts)


MERGE_SET = _merge_set_clause()


def is_bad_data(exc: BaseException) -> bool:
    """A row the database refuses whatever the moment (bad encoding, a value out of range, a
    broken constraint), as opposed to a database that is away: retrying the same batch would
    fail forever, so the recorder sets such rows apart instead of waiting for them."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return isinstance(exc, sqlalchemy.exc.DataError | sqlalchemy.exc.IntegrityError)
    return isinstance(
        exc,
        asyncpg.DataError
        | asyncpg.IntegrityConstraintViolationError
        | orjson.JSONEncodeError
        | ValueError
        | TypeError,
    )


class LogStore(Protocol):
    async def upsert(self, changes: Sequence[LifecycleChange]) -> None: ...
    async def close(self) -> None: ...


def _json_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()


def _text(value: str | None) -> str | None:
    """Any app's strings land here (error messages, task names): PostgreSQL refuses NUL in
    text, and one such row would fail its whole batch, again and again."""
    return None if value is None else without_nul(value)


def _same(value: Any) -> Any:
    return value


def _datetime_or_none(value: float | None) -> datetime | None:
    return None if value is None else as_datetime(value)


_TO_SQL_OF_TYPE: dict[str, Callable[[Any], Any]] = {
    "jsonb": _json_or_none,
    "text": _text,
    "timestamptz": _datetime_or_none,
}
_TO_SQL = tuple(_TO_SQL_OF_TYPE.get(pg_type, _same) for _, _, pg_type in _FIELDS)


def _row(change: LifecycleChange, now: datetime) -> tuple[Any, ...]:
    """The values of COLUMNS, in order, for an executemany."""
    row = [to_sql(value) for to_sql, value in zip(_TO_SQL, _values(change), strict=True)]
    if row[-1] is None:  # created_at
        row[-1] = as_datetime(change.timestamp)
    return (*row, now)


def _from_array(index: int, pg_type: str) -> str:
    """The value at `index` of a batch row (a jsonb array, `j`) as its column's type: a
    time from Unix seconds (_PG_TIME); a JSON null as SQL NULL, as in every other column
    (jsonb would keep it as the JSON value `null`)."""
    if pg_type == "jsonb":
        return f"nullif(j->{index}, 'null')"
    if pg_type == "text":
        return f"j->>{index}"
    if pg_type == "timestamptz":
        return _PG_TIME.format(f"(j->>{index})::float8")
    return f"(j->>{index})::{pg_type}"


class PostgresLogStore:
    """One dedicated asyncpg connection: the recorder flushes one batch at a time anyway.

    The batch travels as one JSON document, an array per row, that PostgreSQL unpacks
    (`jsonb_array_elements`): orjson writes it in a few µs per row, where encoding 18 typed
    arrays cost the worker's event loop ~25 µs per row (measured)."""

    # The log is partitioned by created_at, so the upsert key holds it. A change that knows
    # its row's created_at (the enqueue stamp) uses it; one that does not (a worker's outcome
    # or progress) takes the existing row's, looked up by (task_id, attempt), else its own
    # timestamp. COALESCE stops at the first non-NULL: known stamps cost no lookup.
    _SQL = (
        "WITH u AS (SELECT "
        + ", ".join(
            f"{_from_array(index, pg_type)} AS {key}"
            for index, (_, key, pg_type) in enumerate((*_FIELDS, ("known", "known", "bool")))
        )
        + " FROM jsonb_array_elements($1::jsonb) AS j) "
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "
        f"SELECT {', '.join(key for _, key, _ in _FIELDS[:-1])}, "
        "coalesce(CASE WHEN known THEN cr END, "
        f"(SELECT e.created_at FROM {TABLE} AS e WHERE e.task_id = u.t "
        "AND e.attempt = u.a ORDER BY e.created_at LIMIT 1), cr), $2 FROM u "
        "ORDER BY t, a "
        f"ON CONFLICT (task_id, attempt, created_at) DO UPDATE SET {MERGE_SET}"
    )

    def __init__(self, database_url: str, schema: str | None = None) -> None:
        self._dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._schema = schema
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await connect_postgres(
                self._dsn, self._schema, timeout=5, command_timeout=30
            )
        return self._conn

    async def upsert(self, changes: Sequence[LifecycleChange]) -> None:
        batch = json_without_nul(orjson.dumps([_json_row(c) for c in changes], default=str))
        conn = await self._connection()
        try:
            await conn.execute(self._SQL, batch.decode(), datetime.now(UTC))
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
            await self._drop_connection()
            raise

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def close(self) -> None:
        """asyncpg's close waits for the server, and first for the cancel of a write cut off
        by the recorder's stop, with no bound of its own (a worker's SIGTERM waited out the
        whole shutdown timeout on a stalled database): past CLOSE_TIMEOUT_SECONDS the socket
        is dropped instead. Nothing is lost: a row not written by then was never durable."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await conn.close()
        except Exception:  # timed out or the connection broke: no goodbye then
            conn.terminate()


def _json_row(change: LifecycleChange) -> tuple[Any, ...]:
    """A row of the batch: the values of _FIELDS in their order, then whether created_at is
    the change's own. An array, not an object: orjson writes it in a third of the time. As
    jsonb, PostgreSQL reads an array's elements by position as fast as json_to_recordset
    read objects (as json, each `->>` parsed the row again: 40 % more database CPU per row).
    params and result nest as JSON (json_safe made them so); times stay Unix seconds, which
    the statement converts (_PG_TIME)."""
    # Spelled out rather than built from _FIELDS: this runs for every row on the worker's
    # hot path. tests/test_log_store.py writes a change with every field and reads each
    # column back, and checks this order against _FIELDS.
    created = change.created_at
    return (
        change.task_id,
        change.attempt,
        change.task_name,
        change.status,
        change.params,
        change.queue,
        change.worker,
        change.progress,
        change.progress_message,
        change.result,
        change.started_at,
        change.completed_at,
        change.duration_ms,
        change.error_message,
        change.error_traceback,
        change.run_at,
        change.timestamp if created is None else created,
        created is not None,
    )


class SqlAlchemyLogStore:
    """SQLite (the embedded mode): an executemany upsert through the app's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        placeholders = ", ".join(f":{c}" for c in COLUMNS)
        table = own_name(TABLE, engine.dialect)
        self._sql = text(
            f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({placeholders}) "
            f"ON CONFLICT (task_id, attempt) DO UPDATE SET {_merge_set_clause(table)}"
        )

    async def upsert(self, changes: Sequence[LifecycleChange]) -> None:
        now = datetime.now(UTC)
        params = [dict(zip(COLUMNS, _sqlite_row(_row(c, now)), strict=True)) for c in changes]
        params.sort(key=lambda p: (p["task_id"], p["attempt"]))
        async with self._engine.begin() as conn:
            if params:  # none: the recorder only asks whether the database is back
                await conn.execute(self._sql, params)

    async def close(self) -> None:
        return None


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Datetimes as the naive-UTC text SQLAlchemy's SQLite DateTime reads back."""
    return tuple(
        v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v
        for v in row
    )
