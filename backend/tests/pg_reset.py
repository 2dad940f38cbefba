"""A fresh migrated database in a tenth of the time: emptied, not rebuilt, when it can be.

Dropping, creating and migrating the test database takes a second or more (several on a
busy machine), and most tests that use PostgreSQL ask for one. When the database still has
exactly the schema a migration to head gave it earlier in this run (its tables, partitions,
columns, functions, triggers, settings and Alembic version, compared by fingerprint, once the
partitions tests added are dropped: the log is partitioned by day), it is as good as new
when every other connection is closed (as `DROP DATABASE … WITH (FORCE)` would), every table
but Alembic's emptied and the sequences restarted. Any other difference (a test that
migrated down, dropped a partition, added a table of its own) and it is rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

# Everything a test could change in the schema, in the schemas that are not PostgreSQL's own.
_FINGERPRINT = """
WITH user_schemas AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND nspname NOT LIKE 'pg\\_temp\\_%' AND nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
)
SELECT md5(coalesce(string_agg(item, E'\\n' ORDER BY item), '')) FROM (
    SELECT 'schema ' || nspname AS item FROM user_schemas
    UNION ALL
    SELECT 'relation ' || s.nspname || '.' || c.relname || ' ' || c.relkind::text
    FROM pg_class c JOIN user_schemas s ON s.oid = c.relnamespace
    UNION ALL
    SELECT 'column ' || s.nspname || '.' || c.relname || '.' || a.attname || ' '
        || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' '
        || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN user_schemas s ON s.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'function ' || s.nspname || '.' || p.proname || ' ' || md5(pg_get_functiondef(p.oid))
    FROM pg_proc p JOIN user_schemas s ON s.oid = p.pronamespace WHERE p.prokind IN ('f', 'p')
    UNION ALL
    SELECT 'trigger ' || t.tgrelid::regclass::text || ' ' || t.tgname || ' '
        || md5(pg_get_triggerdef(t.oid))
    FROM pg_trigger t WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'constraint ' || c.conrelid::regclass::text || ' ' || c.conname || ' '
        || md5(pg_get_constraintdef(c.oid))
    FROM pg_constraint c JOIN user_schemas s ON s.oid = c.connamespace
    UNION ALL
    SELECT 'setting ' || array_to_string(r.setconfig, ';')
    FROM pg_db_role_setting r JOIN pg_database d ON d.oid = r.setdatabase
    WHERE d.datname = current_database()
    UNION ALL
    SELECT 'extension ' || extname || ' ' || extversion FROM pg_extension
) items
"""

_TABLES = """
SELECT format('%I.%I', s.nspname, c.relname) AS name, c.relname = 'alembic_version' AS alembic
FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND s.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND s.nspname NOT LIKE 'pg\\_%'
"""

# Only the sequences used since their last restart (last_value is NULL until then).
_USED_SEQUENCES = """
SELECT format('%I.%I', schemaname, sequencename) FROM pg_sequences
WHERE last_value IS NOT NULL AND schemaname NOT IN ('pg_catalog', 'information_schema')
"""


_PARTITIONS = """
SELECT format('%I.%I', s.nspname, c.relname) FROM pg_class c
JOIN pg_namespace s ON s.oid = c.relnamespace
WHERE c.relispartition AND c.relkind IN ('r', 'p')
"""


@dataclass(frozen=True)
class Pristine:
    """A database just migrated to head: its schema's fingerprint and its partitions."""

    schema: str = ""
    partitions: frozenset[str] = frozenset()


class _Changed(Exception):
    """The schema is not the migrated one."""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _versions(conn: asyncpg.Connection, tables: list[asyncpg.Record]) -> str:
    """The Alembic versions of every history in the database (TaskLens's, an app's)."""
    found = []
    for table in tables:
        if table["alembic"]:
            rows = await conn.fetch(f"SELECT version_num FROM {table['name']}")
            found.append(f"{table['name']}={sorted(r['version_num'] for r in rows)}")
    return ";".join(sorted(found))


async def fingerprint(url: str) -> Pristine:
    """The migrated schema, taken right after a migration to head."""
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(_TABLES)
        for table in tables:
            if not table["alembic"] and await conn.fetchval(
                f"SELECT EXISTS (SELECT FROM {table['name']})"
            ):
                return Pristine()  # a migration seeded rows: truncating would lose them, so never
        return Pristine(
            f"{await conn.fetchval(_FINGERPRINT)}/{await _versions(conn, tables)}",
            frozenset(row[0] for row in await conn.fetch(_PARTITIONS)),
        )
    finally:
        await conn.close()


async def empty_if_pristine(admin_url: str, url: str, name: str, expected: Pristine) -> bool:
    """Empties the database `name` if its schema is `expected` but for partitions added
    since (the log's, of days a test wrote: dropped); False if it is not (or it is missing):
    it must then be rebuilt."""
    if not expected.schema:
        return False
    admin = await asyncpg.connect(admin_url)
    try:
        exists = "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)"
        if not await admin.fetchval(exists, name):
            return False
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET lock_timeout = '5s'")
        added = {row[0] for row in await conn.fetch(_PARTITIONS)} - expected.partitions
        async with conn.transaction():
            for partition in sorted(added, key=len, reverse=True):  # sub-partitions first
                await conn.execute(f"DROP TABLE IF EXISTS {partition}")
            tables = await conn.fetch(_TABLES)
            schema = f"{await conn.fetchval(_FINGERPRINT)}/{await _versions(conn, tables)}"
            if schema != expected.schema:
                raise _Changed  # rolls the drops back
        filled = [t["name"] for t in tables if not t["alembic"]]
        if filled:  # one query: which of them have rows at all
            filled = [
                row[0]
                for row in await conn.fetch(
                    " UNION ALL ".join(
                        f"SELECT {_literal(name)} WHERE EXISTS (SELECT FROM {name})"
                        for name in filled
                    )
                )
            ]
        async with conn.transaction():
            # DELETE, not TRUNCATE: a truncated table gets new files, a second's work for the
            # log's partitions on a busy disk. Triggers off (as a replica applies rows): the
            # rollup tables they keep are emptied too.
            await conn.execute("SET LOCAL session_replication_role = replica")
            for name in filled:
                await conn.execute(f"DELETE FROM {name}")
            for sequence in await conn.fetch(_USED_SEQUENCES):
                await conn.execute(f"ALTER SEQUENCE {sequence[0]} RESTART")
        return True
    except _Changed:
        return False
    except asyncpg.PostgresError:
        return False  # a lock held elsewhere, say: rebuilt instead
    finally:
        await conn.close()
