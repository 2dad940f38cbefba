from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
from layers import (  # the test layers: unit, integration, system
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_ignore_collect,
    pytest_runtest_call,
    pytest_runtest_setup,
)
from pg_reset import Pristine, empty_if_pristine, fingerprint
from support import API_TOKENS, Stack

from tasklens import migrate

PG_ADMIN_URL = os.environ.get("TASKLENS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("TASKLENS_TEST_REDIS", "redis://127.0.0.1:6379")
# Separate names let several checkouts run their suites side by side on one machine.
TEST_DB = os.environ.get("TASKLENS_TEST_DB_NAME", "tasklens_test")
TEST_REDIS_DB = os.environ.get("TASKLENS_TEST_REDIS_DB", "15")
__all__ = [
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_ignore_collect",
    "pytest_runtest_call",
    "pytest_runtest_setup",
]


async def _recreate_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def pg_url(name: str = TEST_DB) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def _unavailable(service: str, where: str, exc: Exception) -> None:
    """In CI a missing service fails the run; on a laptop its tests are skipped, saying why."""
    message = f"needs {service} at {where} ({exc}); start it or set TASKLENS_TEST_*"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def empty_postgres() -> str:
    """A new PostgreSQL database that nothing has touched, not even `tasklens migrate`."""
    try:
        asyncio.run(_recreate_database(TEST_DB))
    except OSError as exc:
        _unavailable("PostgreSQL", PG_ADMIN_URL, exc)
    return pg_url()


# The schema's fingerprint right after the last migration to head in this run (pg_reset.py).
_migrated: dict[str, Pristine] = {}


def fresh_postgres() -> str:
    """A freshly migrated, empty PostgreSQL database: emptied in place when its schema is
    still the one a migration gave it (pg_reset.py), else dropped, created and migrated."""
    url, raw = pg_url(), pg_url().replace("postgresql+asyncpg://", "postgresql://")
    try:
        pristine = _migrated.get(TEST_DB, Pristine())
        if asyncio.run(empty_if_pristine(PG_ADMIN_URL, raw, TEST_DB, pristine)):
            return url
    except OSError as exc:
        _unavailable("PostgreSQL", PG_ADMIN_URL, exc)
    empty_postgres()
    migrate.upgrade(url)
    _migrated[TEST_DB] = asyncio.run(fingerprint(raw))
    return url


_sqlite_migrated: list[Path] = []


def fresh_sqlite(path: Path) -> str:
    """A migrated SQLite database at `path`: a copy of one migrated once in this run, the
    same file a migration would make, in a millisecond instead of a few hundred."""
    if not _sqlite_migrated:
        folder = Path(tempfile.mkdtemp(prefix="tasklens-tests-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        migrate.upgrade(f"sqlite+aiosqlite:///{folder}/migrated.db")
        _sqlite_migrated.append(folder / "migrated.db")
    template = _sqlite_migrated[0]
    shutil.copyfile(template, path)
    for suffix in ("-wal", "-shm"):  # none once the migration has closed it, but if any
        if (extra := template.with_name(template.name + suffix)).exists():
            shutil.copyfile(extra, path.with_name(path.name + suffix))
    return f"sqlite+aiosqlite:///{path}"


def fresh_redis() -> str:
    url = f"{REDIS_BASE}/{TEST_REDIS_DB}"
    try:
        with redis.Redis.from_url(url) as client:
            client.flushdb()
    except redis.ConnectionError as exc:
        _unavailable("Redis", REDIS_BASE, exc)
    return url


def distributed_stack(workdir: Path) -> Stack:
    return Stack(
        workdir,
        {
            "TASKLENS_DATABASE_URL": fresh_postgres(),
            "TASKLENS_REDIS_URL": fresh_redis(),
            "TASKLENS_API_TOKENS": API_TOKENS,
        },
    )


def embedded_stack(workdir: Path) -> Stack:
    return Stack(
        workdir,
        {
            "TASKLENS_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/data/tasklens.db",
            "TASKLENS_REDIS_URL": "",
            "TASKLENS_API_TOKENS": API_TOKENS,
        },
    )


STACKS = {"embedded": embedded_stack, "distributed": distributed_stack}


@pytest.fixture
def postgres_url() -> str:
    return fresh_postgres()


@pytest.fixture
def redis_url() -> str:
    return fresh_redis()


@pytest.fixture
def distributed(tmp_path: Path) -> Iterator[Stack]:
    stack = distributed_stack(tmp_path)
    yield stack
    stack.stop_all()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Stack]:
    stack = embedded_stack(tmp_path)
    yield stack
    stack.stop_all()
