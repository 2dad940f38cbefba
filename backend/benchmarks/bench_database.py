"""Where every benchmark runs: the PostgreSQL and Redis the tests use unless
TASKLENS_BENCH_PG / TASKLENS_BENCH_REDIS point elsewhere, in a database of its own
(TASKLENS_BENCH_DB_NAME)."""

from __future__ import annotations

import os

import asyncpg

PG_ADMIN = os.environ.get("TASKLENS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TASKLENS_BENCH_REDIS", "redis://127.0.0.1:6379/14")
BENCH_DB = os.environ.get("TASKLENS_BENCH_DB_NAME", "tasklens_bench")


async def fresh_database() -> str:
    """The benchmark database's SQLAlchemy URL, the database created if it is missing."""
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", BENCH_DB)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    finally:
        await conn.close()
    return (
        PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        + f"/{BENCH_DB}"
    )
