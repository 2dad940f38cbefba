"""The result cache: the latest successful result per analysis key, replaced atomically."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens.tracking.database import fetch_row
from tasklens.tracking.models import AnalysisResult


async def save(engine: AsyncEngine, record: AnalysisResult) -> None:
    """One upsert: readers see the old result or the new one, never none."""
    values = record.model_dump()
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(AnalysisResult).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=["key"],
        set_={k: statement.excluded[k] for k in values if k != "key"},
    )
    async with engine.begin() as conn:
        await conn.execute(statement)


_TABLE: sa.Table = AnalysisResult.__table__  # type: ignore[attr-defined]
_BY_KEY = sa.select(_TABLE).where(_TABLE.c.key == sa.bindparam("key"))  # built once


async def read(engine: AsyncEngine, key: str) -> AnalysisResult | None:
    """`load` as one statement on a pooled connection, without a session or a transaction:
    what every enqueue asks first."""
    row = await fetch_row(engine, _BY_KEY, {"key": key})
    return None if row is None else AnalysisResult(**row._mapping)


async def load(session: AsyncSession, key: str) -> AnalysisResult | None:
    """Read from the database every time, not from the session's identity map: a request
    reads it again after a run finished."""
    return await session.get(AnalysisResult, key, populate_existing=True)


async def recent(session: AsyncSession, limit: int) -> list[AnalysisResult]:
    """The newest cached results first: what the dashboard lists as recent analyses."""
    statement = select(AnalysisResult).order_by(col(AnalysisResult.created_at).desc()).limit(limit)
    return list(await session.exec(statement))


def new_record(
    key: str, kind: str, subject: str, params: dict[str, Any], result: dict[str, Any], task_id: str
) -> AnalysisResult:
    return AnalysisResult(
        key=key,
        kind=kind,
        subject=subject,
        params=params,
        result=result,
        task_id=task_id,
        created_at=datetime.now(UTC),
    )
