"""The async SQLAlchemy engine for reads (and SQLite writes), tuned per backend.

On PostgreSQL every TaskLens connection has `search_path` set to TaskLens's own schema
(`TASKLENS_DB_SCHEMA`), and nothing else: the ORM's statements, the raw SQL of the log store
and the migrations, and the PL/pgSQL functions and triggers all name tables unqualified, so
this one setting puts all of them in that schema and none of them can reach the app's tables
in `public` (pg_catalog stays searched, as always).
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

DEFAULT_SCHEMA = "tasklens"
_RESERVED_SCHEMAS = ("public", "information_schema")


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


def create_engine(database_url: str, schema: str | None = None) -> AsyncEngine:
    if database_url.startswith("sqlite"):
        engine = create_async_engine(database_url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        database_url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "timeout": 5,
            "command_timeout": 30,
            "server_settings": postgres_server_settings(schema),
        },
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while the recorder writes.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
