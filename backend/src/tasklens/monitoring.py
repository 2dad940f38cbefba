"""Read side of the lifecycle log: metrics per task name, filtered history, one task."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens.models import TaskExecutionLog, TaskStatus, utcnow

Log = TaskExecutionLog
SelectT = TypeVar("SelectT", bound=sa.Select[Any])
FINISHED = (TaskStatus.SUCCESS.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value)


@dataclass(slots=True)
class TaskMetrics:
    task_name: str
    total_executions: int
    pending: int
    running: int
    success: int
    failed: int
    cancelled: int
    avg_duration_ms: float | None
    p95_duration_ms: float | None
    success_rate: float | None


async def metrics(session: AsyncSession, window_hours: int) -> list[TaskMetrics]:
    since = utcnow() - timedelta(hours=window_hours)
    status = col(Log.status)
    columns: list[Any] = [
        col(Log.task_name),
        *(sa.func.count().filter(status == s.value).label(s.value) for s in TaskStatus),
        sa.func.count().label("total"),
        sa.func.avg(col(Log.duration_ms)).filter(status == "success").label("avg"),
    ]
    counts = (
        sa.select(*columns)
        .where(col(Log.created_at) >= since)
        .group_by(col(Log.task_name))
        .order_by(col(Log.task_name))
    )
    p95 = await _p95_by_name(session, since)
    result = []
    for row in (await session.execute(counts)).all():
        m = row._mapping
        finished = m["success"] + m["failed"] + m["cancelled"]
        result.append(
            TaskMetrics(
                task_name=m["task_name"],
                total_executions=m["total"],
                pending=m["pending"],
                running=m["running"],
                success=m["success"],
                failed=m["failed"],
                cancelled=m["cancelled"],
                avg_duration_ms=None if m["avg"] is None else float(m["avg"]),
                p95_duration_ms=p95.get(m["task_name"]),
                success_rate=(m["success"] / finished) if finished else None,
            )
        )
    return result


async def _p95_by_name(session: AsyncSession, since: datetime) -> dict[str, float]:
    """Nearest-rank p95 of successful durations (same as PostgreSQL's percentile_disc)."""
    ranked = (
        sa.select(
            col(Log.task_name).label("name"),
            col(Log.duration_ms).label("d"),
            sa.func.row_number()
            .over(partition_by=col(Log.task_name), order_by=col(Log.duration_ms))
            .label("rn"),
            sa.func.count().over(partition_by=col(Log.task_name)).label("n"),
        )
        .where(
            col(Log.created_at) >= since,
            col(Log.status) == "success",
            col(Log.duration_ms).is_not(None),
        )
        .subquery()
    )
    # rn == ceil(0.95 * n), in integers: rn >= 0.95n > rn - 1
    query = sa.select(ranked.c.name, ranked.c.d).where(
        ranked.c.rn * 100 >= ranked.c.n * 95, (ranked.c.rn - 1) * 100 < ranked.c.n * 95
    )
    return {name: float(d) for name, d in (await session.execute(query)).all()}


@dataclass(slots=True)
class HistoryFilter:
    task_name: str | None = None
    status: TaskStatus | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None

    def apply(self, query: SelectT) -> SelectT:
        if self.task_name:
            query = query.where(col(Log.task_name) == self.task_name)
        if self.status:
            query = query.where(col(Log.status) == self.status.value)
        if self.start_date:
            query = query.where(col(Log.created_at) >= self.start_date)
        if self.end_date:
            query = query.where(col(Log.created_at) <= self.end_date)
        return query


@dataclass(slots=True)
class HistoryPage:
    total_count: int
    page: int
    page_size: int
    items: list[TaskExecutionLog]

    @property
    def total_pages(self) -> int:
        return math.ceil(self.total_count / self.page_size) if self.total_count else 0


class PageOutOfRange(ValueError):
    pass


async def history(
    session: AsyncSession, where: HistoryFilter, page: int, page_size: int
) -> HistoryPage:
    count_query = where.apply(sa.select(sa.func.count()).select_from(Log))
    total = int((await session.execute(count_query)).scalar_one())
    last_page = max(1, math.ceil(total / page_size))
    if page > last_page:
        raise PageOutOfRange(f"page {page} is past the last page ({last_page})")
    query = (
        where.apply(sa.select(Log))
        .order_by(col(Log.created_at).desc(), col(Log.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = list((await session.execute(query)).scalars().all())
    return HistoryPage(total, page, page_size, items)


async def task_attempts(session: AsyncSession, task_id: str) -> list[TaskExecutionLog]:
    query = select(Log).where(col(Log.task_id) == task_id).order_by(col(Log.attempt))
    return list((await session.exec(query)).all())


async def known_task_names(session: AsyncSession) -> list[str]:
    query = select(col(Log.task_name)).distinct().order_by(col(Log.task_name))
    return list((await session.exec(query)).all())
