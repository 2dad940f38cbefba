"""Read side of the lifecycle log: metrics per task name, filtered history, one task."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens.models import TaskExecutionLog, TaskLogCount, TaskStatus, utcnow

Log = TaskExecutionLog
Count = TaskLogCount
SelectT = TypeVar("SelectT", bound=sa.Select[Any])
FINISHED = (TaskStatus.SUCCESS.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value)


class TaskMetrics(BaseModel):
    """One task name's health over a time window (the API returns it as is)."""

    task_name: str
    total_executions: int
    pending: int
    running: int
    success: int
    failed: int
    cancelled: int
    avg_duration_ms: float | None = Field(description="Over successful executions only")
    p95_duration_ms: float | None = Field(description="Nearest-rank p95 of successful ones")
    success_rate: float | None = Field(description="success / finished; null if none finished")


HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + HOUR


@dataclass(slots=True)
class _Tally:
    by_status: dict[str, int]
    duration_count: int = 0
    duration_sum: float = 0.0


async def metrics(session: AsyncSession, window_hours: int) -> list[TaskMetrics]:
    """Counts come from the hourly counts table for whole hours and from the log itself for
    the part of the window's first hour; p95 needs the durations, so it reads the log."""
    since = utcnow() - timedelta(hours=window_hours)
    first_full_hour = ceil_hour(since)
    whole_hours = (
        sa.select(
            col(Count.task_name),
            col(Count.status),
            sa.func.sum(col(Count.count)),
            sa.func.sum(col(Count.duration_count)),
            sa.func.sum(col(Count.duration_sum)),
        )
        .where(col(Count.bucket) >= first_full_hour)
        .group_by(col(Count.task_name), col(Count.status))
    )
    partial_hour = (
        sa.select(
            col(Log.task_name),
            col(Log.status),
            sa.func.count(),
            sa.func.count(col(Log.duration_ms)),
            sa.func.coalesce(sa.func.sum(col(Log.duration_ms)), 0.0),
        )
        .where(col(Log.created_at) >= since, col(Log.created_at) < first_full_hour)
        .group_by(col(Log.task_name), col(Log.status))
    )
    tallies: dict[str, _Tally] = {}
    for query in (whole_hours, partial_hour):
        for name, status, count, duration_count, duration_sum in await session.execute(query):
            tally = tallies.setdefault(name, _Tally({}))
            tally.by_status[status] = tally.by_status.get(status, 0) + int(count)
            if status == TaskStatus.SUCCESS.value:
                tally.duration_count += int(duration_count)
                tally.duration_sum += float(duration_sum)
    p95 = await _p95_by_name(session, since)
    result = []
    for name in sorted(tallies):
        tally = tallies[name]
        n = {s.value: tally.by_status.get(s.value, 0) for s in TaskStatus}
        if not any(n.values()):
            continue
        finished = n["success"] + n["failed"] + n["cancelled"]
        result.append(
            TaskMetrics(
                task_name=name,
                total_executions=sum(n.values()),
                pending=n["pending"],
                running=n["running"],
                success=n["success"],
                failed=n["failed"],
                cancelled=n["cancelled"],
                avg_duration_ms=(
                    tally.duration_sum / tally.duration_count if tally.duration_count else None
                ),
                p95_duration_ms=p95.get(name),
                success_rate=(n["success"] / finished) if finished else None,
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


async def _rows_per_hour(session: AsyncSession, where: HistoryFilter) -> list[tuple[datetime, int]]:
    """Matching rows per hour, newest hour first, exact: whole hours from the counts table,
    the (at most two) hours cut by start_date/end_date counted in the log itself."""
    query = (
        sa.select(col(Count.bucket), sa.func.sum(col(Count.count)))
        .group_by(col(Count.bucket))
        .order_by(col(Count.bucket).desc())
    )
    if where.task_name:
        query = query.where(col(Count.task_name) == where.task_name)
    if where.status:
        query = query.where(col(Count.status) == where.status.value)
    if where.start_date:
        query = query.where(col(Count.bucket) >= floor_hour(where.start_date))
    if where.end_date:
        query = query.where(col(Count.bucket) <= where.end_date)
    hours = [(bucket, int(n)) for bucket, n in await session.execute(query)]
    cut = {floor_hour(d) for d in (where.start_date, where.end_date) if d is not None}
    if not cut:
        return hours
    exact = {}
    for hour in cut:
        in_hour = where.apply(sa.select(sa.func.count()).select_from(Log)).where(
            col(Log.created_at) >= hour, col(Log.created_at) < hour + HOUR
        )
        exact[hour] = int((await session.execute(in_hour)).scalar_one())
    return [(hour, exact.get(hour, n)) for hour, n in hours if exact.get(hour, n) > 0]


async def history(
    session: AsyncSession, where: HistoryFilter, page: int, page_size: int
) -> HistoryPage:
    """Newest first. The page's first row is found hour by hour in the counts, then read
    with a small OFFSET inside that hour: every page costs about the same, the last one
    of millions of rows too, and the total is exact."""
    hours = await _rows_per_hour(session, where)
    total = sum(n for _, n in hours)
    last_page = max(1, math.ceil(total / page_size))
    if page > last_page:
        raise PageOutOfRange(f"page {page} is past the last page ({last_page})")
    skip = (page - 1) * page_size
    query = where.apply(sa.select(Log)).order_by(col(Log.created_at).desc(), col(Log.id).desc())
    for hour, n in hours:
        if skip < n:
            query = query.where(col(Log.created_at) < hour + HOUR)
            break
        skip -= n
    items = list((await session.execute(query.offset(skip).limit(page_size))).scalars().all())
    return HistoryPage(total, page, page_size, items)


async def task_attempts(session: AsyncSession, task_id: str) -> list[TaskExecutionLog]:
    query = select(Log).where(col(Log.task_id) == task_id).order_by(col(Log.attempt))
    return list((await session.exec(query)).all())


async def known_task_names(session: AsyncSession) -> list[str]:
    query = select(col(Log.task_name)).distinct().order_by(col(Log.task_name))
    return list((await session.exec(query)).all())


async def wait_until_finished(
    sessions: async_sessionmaker[AsyncSession],
    task_id: str,
    timeout: float,
    poll_seconds: float = 0.1,
) -> TaskExecutionLog | None:
    """The task's last attempt once it is terminal (success, failed, cancelled), or None
    after `timeout`. Polls the log: it works the same for every process that wrote it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with sessions() as session:
            attempts = await task_attempts(session, task_id)
        if attempts and TaskStatus(attempts[-1].status).is_terminal:
            return attempts[-1]
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(min(poll_seconds, max(deadline - loop.time(), 0)))
