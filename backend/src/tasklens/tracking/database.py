"""The async SQLAlchemy engine for reads (and SQLite writes), tuned per backend.

On PostgreSQL every TaskLens connection has `search_path` set to TaskLens's own schema
(`TASKLENS_DB_SCHEMA`), and nothing else: the ORM's statements, the raw SQL of the log store
and the migrations, and the PL/pgSQL functions and triggers all name tables unqualified, so
this one setting puts all of them in that schema and none of them can reach the app's tables
in `public` (pg_catalog stays searched, as always).

SQLite has no schemas: there every TaskLens table, index and trigger is named
`tasklens_<name>` (OWN_NAMES), so an app's file may hold its own `task_execution_logs`. The
SQLite engine's identifier preparer renders the models' and the migrations' names so; raw SQL
spells them with `own_name`, the same mapping.
"""

from __future__ import annotations

import re
import time
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.base import SQLiteIdentifierPreparer
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens.tracking.models import TASKLENS_TABLES

DEFAULT_SCHEMA = "tasklens"
_RESERVED_SCHEMAS = ("public", "information_schema")

SQLITE_PREFIX = "tasklens_"
# Everything TaskLens makes in a database: the models' tables, and the indexes and triggers
# the migrations make on them. PostgreSQL keeps these names in TaskLens's schema; SQLite
# prefixes each (test_migrations checks that a migrated file holds no other name).
OWN_INDEXES = frozenset(
    {
        "ix_task_logs_name_status_created",
        "ix_task_logs_created_at",
        "ix_task_logs_task_name",
        "ix_task_logs_status",
        "ix_task_logs_later_attempts",
        "ix_analysis_results_kind_created",
        "ix_analysis_refreshes_key_requested",
        "ix_alert_firings_started",
        "ux_alert_firings_open",
        "ix_audit_log_at",
    }
)
OWN_TRIGGERS = frozenset(
    {
        "task_log_counts_insert",
        "task_log_counts_update",
        "task_log_counts_delete",
        "task_duration_histogram_insert",
        "task_duration_histogram_update_old",
        "task_duration_histogram_update_new",
        "task_duration_histogram_delete",
        "task_outcome_totals_insert",
        "task_outcome_totals_update",
        "audit_log_no_update",
        "audit_log_no_delete",
    }
)
OWN_NAMES = TASKLENS_TABLES | OWN_INDEXES | OWN_TRIGGERS


class _PrefixedNames(SQLiteIdentifierPreparer):
    """SQLite's identifiers, with TaskLens's own names prefixed: every statement SQLAlchemy
    renders (ORM queries, Core, Alembic's create_table/create_index) goes through `quote`
    for table and index names. Reflection quotes with `quote_identifier`, so the inspector
    still sees the names as they are in the file."""

    def quote(self, ident: str) -> str:
        return super().quote(SQLITE_PREFIX + ident if ident in OWN_NAMES else ident)


def own_name(name: str, dialect: sa.Dialect) -> str:
    """`name` (one of OWN_NAMES) as this engine's statements spell it, for raw SQL."""
    return dialect.identifier_preparer.quote(name)


def check_schema_name(value: str) -> str:
    """A plain lower-case identifier, TaskLens's own: it is written into SQL (search_path,
    CREATE SCHEMA) quoted but not escaped, and PostgreSQL folds unquoted names to lower case."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise ValueError(
            f"{value!r} is not a schema name: 1-63 lower-case letters, digits or _, "
            "not starting with a digit"
        )
    if value in _RESERVED_SCHEMAS or value.startswith("pg_"):
        raise ValueError(
            f"{value!r}: TaskLens keeps its tables in a schema of its own, apart from "
            "the app's (public) and PostgreSQL's (pg_*, information_schema)"
        )
    return value


def tasklens_schema(schema: str | None = None) -> str:
    """The schema asked for, else `TASKLENS_DB_SCHEMA` (validated by the library's settings)."""
    if schema is not None:
        return schema
    from tasklens.tracking.settings import TrackingSettings  # imports this module

    return TrackingSettings().db_schema


def postgres_server_settings(schema: str | None = None) -> dict[str, str]:
    # The name is a validated plain identifier (settings.py), so quoting is enough.
    return {"search_path": f'"{tasklens_schema(schema)}"'}


async def connect_postgres(
    database_url: str, schema: str | None = None, **kwargs: Any
) -> asyncpg.Connection:
    """A raw asyncpg connection that sees TaskLens's tables as the engine's do."""
    return await asyncpg.connect(
        database_url.replace("postgresql+asyncpg://", "postgresql://", 1),
        server_settings=postgres_server_settings(schema),
        **kwargs,
    )


def create_engine(
    database_url: str, schema: str | None = None, *, sqlite_prefix: bool = True
) -> AsyncEngine:
    """`sqlite_prefix=False` only for the migrations that run on a file of the old SQLite
    layout (unprefixed names, before migration 0008)."""
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30})
        if sqlite_prefix:
            engine.dialect.identifier_preparer = _PrefixedNames(engine.dialect)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # Up to 20 connections, each kept once opened: an overflow connection (opened past
    # pool_size, closed when handed back) made every burst pay new PostgreSQL backends.
    engine = create_async_engine(
        database_url,
        pool_size=20,
        max_overflow=0,
        pool_recycle=1800,
        connect_args={
            "timeout": 5,
            "command_timeout": 30,
            "server_settings": postgres_server_settings(schema),
        },
    )
    pool = engine.sync_engine.pool
    event.listen(pool, "connect", _stamp_idle_since)
    event.listen(pool, "checkin", _stamp_idle_since)
    event.listen(pool, "checkout", _ping_when_idle(engine.sync_engine.dialect))
    return engine


# A pooled connection idle this long is pinged before it is handed out (a database restart
# or an idle-session timeout closes it meanwhile). SQLAlchemy's `pool_pre_ping` pings every
# checkout: on asyncpg a BEGIN, a query and a ROLLBACK, three round trips more than the one
# an enqueue's cache read needs. A connection checked in moments ago is open; if the server
# went away in those moments, the statement fails as it could right after any ping, and the
# disconnect invalidates the pool (SQLAlchemy), so the next checkouts reconnect.
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "tasklens_idle_since"


def _stamp_idle_since(_dbapi_connection: Any, record: Any, *_: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_when_idle(dialect: sa.Dialect) -> Any:
    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                # The pool reconnects this one, and every older one at its next checkout.
                raise sa.exc.InvalidatePoolError() from exc
            raise

    return checkout


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while the recorder writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def fetch_row(
    engine: AsyncEngine, statement: sa.Executable, params: dict[str, Any] | None = None
) -> sa.Row[Any] | None:
    """The first row of one read, outside a transaction on PostgreSQL (autocommit: no BEGIN
    and COMMIT round trips around it) and without an ORM session: for a hot path's single
    read, such as an enqueue's cache lookup."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        result = await conn.execute(statement, params)
        return result.first()
