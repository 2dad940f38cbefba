"""Alembic, driven from code so `tasklens migrate` works from an installed package.

TaskLens shares its database with the app it watches, so it keeps to its own corner: on
PostgreSQL its tables and its Alembic version table (`alembic_version`) live in its own schema
(`TASKLENS_DB_SCHEMA`, reached through the connections' `search_path`, database.py); on
SQLite, which has no schemas, its names start with `tasklens_` (its version table is
`tasklens_alembic_version`, its tables since 0008 `tasklens_<name>`). The app's own
`alembic_version` and tables are never read or written, except to adopt a database of the
old layout (below).

The old layout (revisions 0001-0005 before 0006): tables in `public`, version in
`public.alembic_version`. Such a database is recognised by one of our revision ids in that
table *and* TaskLens's own `api_tokens` and `task_execution_logs` columns there (an app may
number its revisions 0001… too); it is first brought to 0005 where it is, then its version
row moves to TaskLens's version table, and migration 0006 moves the tables.

On SQLite TaskLens's objects are named `tasklens_<name>` since 0008 (database.OWN_NAMES); a
file of the old SQLite layout (unprefixed names, before 0008) is first brought to 0007 under
those names, then 0008 renames them. Downgrading below 0008 restores the unprefixed names, so
the revisions below run under them too; except to base, which drops the prefixed objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tasklens.tracking.database import OWN_NAMES, SQLITE_PREFIX, create_engine, tasklens_schema

T = TypeVar("T")

SQLITE_VERSION_TABLE = "tasklens_alembic_version"
POSTGRES_VERSION_TABLE = "alembic_version"  # inside TaskLens's schema
# The old layout: Alembic's default version table in the connection's default schema.
LEGACY_SCHEMA = "public"
LEGACY_REVISIONS = ("0001", "0002", "0003", "0004", "0005")
LAST_LEGACY_REVISION = "0005"
# SQLite: from this revision on TaskLens's names are prefixed; before it, the plain ones.
SQLITE_PREFIX_REVISION = "0008"
LAST_PLAIN_SQLITE_REVISION = "0007"
# Columns only TaskLens's tables have, to tell its old tables from an app's namesakes.
LEGACY_FINGERPRINT = {
    "api_tokens": {"name", "role", "token_sha256", "created_at"},
    "task_execution_logs": {"task_id", "attempt", "progress_message", "error_traceback"},
}


def _is_postgres(url_or_dialect: str) -> bool:
    return url_or_dialect.startswith("postgresql")


class VersionTable(NamedTuple):
    name: str
    schema: str | None

    @property
    def options(self) -> dict[str, Any]:
        """As Alembic's `configure` takes them."""
        return {"version_table": self.name, "version_table_schema": self.schema}

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.name}"' if self.schema else f'"{self.name}"'


LEGACY_VERSION_TABLE = VersionTable("alembic_version", None)


def version_table(dialect: str, schema: str | None = None) -> VersionTable:
    """Where TaskLens's Alembic version lives: the one truth for env.py and the checks."""
    if _is_postgres(dialect):
        return VersionTable(POSTGRES_VERSION_TABLE, tasklens_schema(schema))
    return VersionTable(SQLITE_VERSION_TABLE, None)


def alembic_config(
    database_url: str,
    schema: str | None = None,
    legacy: bool = False,
    sqlite_plain: bool = False,
) -> Config:
    """`legacy`: the layout before 0006 (version in `alembic_version`, PostgreSQL's tables in
    `public`, SQLite's unprefixed); `sqlite_plain`: SQLite's unprefixed names before 0008."""
    config = Config()
    config.set_main_option("script_location", "tasklens:migrations")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    # SQLite has no schemas; PostgreSQL's is resolved now so env.py and 0006 agree on it.
    config.attributes["schema"] = tasklens_schema(schema) if _is_postgres(database_url) else ""
    config.attributes["legacy"] = legacy
    config.attributes["sqlite_plain"] = legacy or sqlite_plain
    return config


def _ensure_sqlite_dir(database_url: str) -> None:
    if database_url.startswith("sqlite") and ":///" in database_url:
        path = database_url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def upgrade(database_url: str, revision: str = "head", schema: str | None = None) -> None:
    _ensure_sqlite_dir(database_url)
    legacy = _run_on(database_url, schema, lambda conn: legacy_revision(conn, schema))
    if legacy is not None and legacy != LAST_LEGACY_REVISION:
        # 0006 moves the tables of 0005; older ones first reach 0005 where they are.
        command.upgrade(alembic_config(database_url, schema, legacy=True), LAST_LEGACY_REVISION)
    if _run_on(database_url, schema, sqlite_plain):
        # 0008 renames the tables of 0007: older ones first reach 0007 under their names.
        plain = alembic_config(database_url, schema, sqlite_plain=True)
        plain.attributes["adopt"] = True
        if not _below_prefix(revision):
            command.upgrade(plain, LAST_PLAIN_SQLITE_REVISION)
        else:
            command.upgrade(plain, revision)
            return
    config = alembic_config(database_url, schema)
    config.attributes["adopt"] = True
    command.upgrade(config, revision)


def _below_prefix(revision: str) -> bool:
    """A revision id (not head, base or a relative one) before SQLite's prefixed names."""
    return revision.isdigit() and revision < SQLITE_PREFIX_REVISION


def downgrade(database_url: str, revision: str, schema: str | None = None) -> None:
    legacy = _run_on(database_url, schema, lambda conn: legacy_revision(conn, schema))
    if legacy is not None:
        raise MigrationRefused(
            f"this database has TaskLens's tables in the layout before 0006 (at {legacy}, "
            "its version in alembic_version): run `tasklens migrate` first, then downgrade"
        )
    to_base = revision == "base"
    if _run_on(database_url, schema, sqlite_plain):
        command.downgrade(alembic_config(database_url, schema, sqlite_plain=True), revision)
    elif database_url.startswith("sqlite") and _below_prefix(revision):
        # Refused before any step runs: the revisions above 0008 would otherwise be undone
        # (SQLite's DDL is not rolled back here) before 0008 found a name taken.
        refuse_taken_plain_names(_run_on(database_url, schema, plain_names_taken))
        # 0008's downgrade restores the plain names, under which the revisions below run.
        command.downgrade(alembic_config(database_url, schema), LAST_PLAIN_SQLITE_REVISION)
        command.downgrade(alembic_config(database_url, schema, sqlite_plain=True), revision)
    else:
        config = alembic_config(database_url, schema)
        config.attributes["to_base"] = to_base  # 0008 leaves the prefixed names to be dropped
        command.downgrade(config, revision)
    if to_base:
        _run_on(database_url, schema, lambda conn: _drop_own_corner(conn, schema))


def plain_names_taken(conn: sa.Connection) -> list[str]:
    """TaskLens's plain (pre-0008) names that the app's objects now hold in this SQLite
    file, beside TaskLens's prefixed ones: a downgrade below 0008 cannot take them back."""
    present = set(conn.scalars(sa.text("SELECT name FROM sqlite_master")).all())
    return sorted(n for n in OWN_NAMES if n in present and SQLITE_PREFIX + n in present)


def refuse_taken_plain_names(taken: list[str]) -> None:
    if taken:
        raise MigrationRefused(
            f"cannot give TaskLens's tables their names before 0008: the database has "
            f"{', '.join(taken)} of its own (a downgrade to base needs none of them)"
        )


def sqlite_plain(conn: sa.Connection) -> bool:
    """Whether this is a SQLite file of TaskLens's old layout: its log table (with its own
    columns) under the unprefixed name, none under the prefixed one."""
    if conn.dialect.name != "sqlite":
        return False
    names = set(conn.scalars(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'")).all())
    log = "task_execution_logs"
    if log not in names or SQLITE_PREFIX + log in names:
        return False
    columns = {c["name"] for c in sa.inspect(conn).get_columns(log)}
    return LEGACY_FINGERPRINT[log] <= columns


def _drop_own_corner(conn: sa.Connection, schema: str | None) -> None:
    """At base nothing of TaskLens is left but its version table (and schema): drop them
    too. The schema goes only when empty (RESTRICT), in case someone put things there."""
    own = version_table(conn.dialect.name, schema)
    conn.execute(sa.text(f"DROP TABLE IF EXISTS {own.qualified}"))
    if own.schema is not None:
        name = own.schema
        left = conn.scalar(
            sa.text(
                "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = :s) + (SELECT count(*) FROM "
                "pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :s)"
            ),
            {"s": name},
        )
        if left == 0:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}"'))


def legacy_revision(conn: sa.Connection, schema: str | None = None) -> str | None:
    """TaskLens's revision when this database still has the old layout, else None."""
    own = version_table(conn.dialect.name, schema)
    inspector = sa.inspect(conn)
    if inspector.has_table(own.name, schema=own.schema):
        return None  # already in the new layout
    legacy_schema = LEGACY_SCHEMA if _is_postgres(conn.dialect.name) else None
    if not inspector.has_table(LEGACY_VERSION_TABLE.name, schema=legacy_schema):
        return None
    for table, columns in LEGACY_FINGERPRINT.items():
        if not inspector.has_table(table, schema=legacy_schema):
            return None
        if not columns <= {c["name"] for c in inspector.get_columns(table, legacy_schema)}:
            return None
    versions = conn.scalars(sa.text(f"SELECT version_num FROM {_legacy_version_table(conn)}")).all()
    ours = [v for v in versions if v in LEGACY_REVISIONS]
    return ours[0] if len(ours) == 1 else None


def _legacy_version_table(conn: sa.Connection) -> str:
    if _is_postgres(conn.dialect.name):
        return VersionTable(LEGACY_VERSION_TABLE.name, LEGACY_SCHEMA).qualified
    return LEGACY_VERSION_TABLE.qualified


def adopt_legacy(conn: sa.Connection, schema: str | None = None) -> None:
    """Move TaskLens's version row of the old layout into its own version table; the
    app's rows stay, and the old table goes only if it is left empty."""
    revision = legacy_revision(conn, schema)
    if revision is None:
        return
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    own = version_table(conn.dialect.name, schema)
    MigrationContext.configure(conn, opts=own.options).stamp(script, revision)
    old = _legacy_version_table(conn)
    conn.execute(sa.text(f"DELETE FROM {old} WHERE version_num = :v"), {"v": revision})
    if conn.scalar(sa.text(f"SELECT count(*) FROM {old}")) == 0:
        conn.execute(sa.text(f"DROP TABLE {old}"))


def current_revision(conn: sa.Connection, schema: str | None = None) -> str | None:
    """TaskLens's revision in its own version table (None before the first migration)."""
    context = MigrationContext.configure(
        conn, opts=version_table(conn.dialect.name, schema).options
    )
    return context.get_current_revision()


def _run_on(database_url: str, schema: str | None, work: Callable[[sa.Connection], T]) -> T:
    async def run() -> T:
        engine = create_engine(database_url, schema)
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


class MigrationRefused(RuntimeError):
    """A migration that would break the database or the app's objects in it; the message
    says why and what to do (`tasklens` prints it as one line)."""


class SchemaOutOfDate(RuntimeError):
    """The database is not at the code's migration head: `tasklens migrate` fixes it."""
