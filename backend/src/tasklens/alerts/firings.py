"""The firings table (`alert_firings`): open one, update its value, resolve it, read the
history. The partial unique index on open rows is what makes `open_firing` safe when an
evaluator that lost its lease still finishes a round: the second insert fails, and the
caller sends nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from tasklens.tracking.models import AlertFiring

HISTORY_LIMIT = 200
_TABLE = AlertFiring.__table__  # type: ignore[attr-defined]


async def open_firings(engine: AsyncEngine) -> dict[str, AlertFiring]:
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(_TABLE).where(_TABLE.c.resolved_at.is_(None)))
        return {row.rule: AlertFiring.model_validate(row._mapping) for row in rows}


async def last_notified(engine: AsyncEngine, rule: str) -> datetime | None:
    """When the rule last sent a `firing` notification (the cooldown counts from it)."""
    query = sa.select(sa.func.max(_TABLE.c.started_at)).where(
        _TABLE.c.rule == rule, _TABLE.c.notified.is_(True)
    )
    async with engine.connect() as conn:
        value: datetime | None = await conn.scalar(query)
    return value


async def open_firing(engine: AsyncEngine, firing: AlertFiring) -> AlertFiring | None:
    """Inserts `firing`; None when the rule has an open one already (someone else's)."""
    values = firing.model_dump(exclude={"id"})
    try:
        async with engine.begin() as conn:
            new_id = await conn.scalar(sa.insert(_TABLE).values(**values).returning(_TABLE.c.id))
    except IntegrityError:
        return None
    return AlertFiring.model_validate({**values, "id": new_id})


async def update_value(engine: AsyncEngine, firing_id: int, value: float | None) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(_TABLE).where(_TABLE.c.id == firing_id).values(value=value, peak=_peak(value))
        )


def _peak(value: float | None) -> sa.ColumnElement[float | None]:
    if value is None:
        return _TABLE.c.peak  # type: ignore[no-any-return]
    return sa.case(
        (_TABLE.c.peak.is_(None), value), (_TABLE.c.peak < value, value), else_=_TABLE.c.peak
    )


async def resolve(engine: AsyncEngine, firing_id: int, at: datetime) -> bool:
    """Closes the firing; False when it was closed already (by another evaluator)."""
    async with engine.begin() as conn:
        result = await conn.execute(
            sa.update(_TABLE)
            .where(_TABLE.c.id == firing_id, _TABLE.c.resolved_at.is_(None))
            .values(resolved_at=at)
        )
    return bool(result.rowcount)


async def close_removed(engine: AsyncEngine, keep: Sequence[str], at: datetime) -> None:
    """Rules gone from the file: their open firings end without a notification."""
    async with engine.begin() as conn:
        query = sa.update(_TABLE).where(_TABLE.c.resolved_at.is_(None))
        if keep:
            query = query.where(_TABLE.c.rule.not_in(list(keep)))
        await conn.execute(query.values(resolved_at=at))


async def history(engine: AsyncEngine, limit: int = HISTORY_LIMIT) -> list[AlertFiring]:
    query = (
        sa.select(_TABLE)
        .order_by(col(AlertFiring.started_at).desc(), col(AlertFiring.id).desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [AlertFiring.model_validate(row._mapping) for row in await conn.execute(query)]
