"""Alembic environment: async engines for both PostgreSQL and SQLite.

TaskLens's own version table (migrate.version_table) and, on PostgreSQL, its own
schema, made here before the first migration and first on every connection's search_path.
There is no autogenerate (`target_metadata` is None): the migrations are written by hand and
name only TaskLens's tables, so the app's tables are never compared, altered or dropped.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

from tasklens import migrate
from tasklens.settings import get_settings
from tasklens.tracking.database import create_engine

config = context.config
SCHEMA: str = config.attributes.get("schema", "")
# True only while an old-layout database is brought to 0005 where it is (migrate.upgrade).
LEGACY: bool = config.attributes.get("legacy", False)
# SQLite under its unprefixed names, before 0008 (migrate.upgrade and downgrade).
SQLITE_PLAIN: bool = config.attributes.get("sqlite_plain", False)


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().database_url


def _run(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    if LEGACY:
        versions = migrate.LEGACY_VERSION_TABLE
    else:
        if postgres:
            connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
        if config.attributes.get("adopt", False):
            migrate.adopt_legacy(connection, SCHEMA or None)
        versions = migrate.version_table(connection.dialect.name, SCHEMA or None)
    context.configure(
        connection=connection,
        target_metadata=None,
        render_as_batch=not postgres,
        version_table=versions.name,
        version_table_schema=versions.schema,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    # The old layout's tables are in public: its migrations run with public on the path.
    schema = migrate.LEGACY_SCHEMA if LEGACY else (SCHEMA or None)
    engine = create_engine(_url(), schema, sqlite_prefix=not SQLITE_PLAIN)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
