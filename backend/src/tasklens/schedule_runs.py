"""The schedules view: each entry of the schedules file with its next run and last outcome.

A scheduler remembers, per schedule, the task it last sent (schedule_lease.record_sent);
its outcome is read from the log by task id. A scheduled refresh only submits the analysis,
so when its row names the analysis task it started, that task's status is the outcome.
Next runs are computed in UTC: a cron's next matching minute (cron.py, with the matcher
taskiq uses); an interval's last send plus the interval, or, with no send known or that
moment past (no scheduler sent it), the start of the next period the firing lease counts
(a multiple of the interval since the epoch).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens.cron import next_fire
from tasklens.schedule_lease import Sent
from tasklens.schedules import ScheduleEntry
from tasklens.tracking.models import TaskExecutionLog
from tasklens.tracking.redis_keys import schedule_sent


@dataclass(frozen=True, slots=True)
class LastRun:
    task_id: str  # the analysis the refresh started, else the refresh task itself
    task_name: str
    status: str
    at: datetime  # when it ended, else when it was sent


@dataclass(frozen=True, slots=True)
class ScheduleView:
    entry: ScheduleEntry
    next_run_at: datetime | None
    last_run: LastRun | None


async def last_sent(redis: Redis, queue_name: str, schedule_ids: list[str]) -> dict[str, Sent]:
    if not schedule_ids:
        return {}
    raw: list[Any] = await redis.mget([schedule_sent(queue_name, i) for i in schedule_ids])
    found = {}
    for schedule_id, value in zip(schedule_ids, raw, strict=True):
        if value is not None:
            data = json.loads(value)
            found[schedule_id] = Sent(str(data["task_id"]), datetime.fromisoformat(data["at"]))
    return found


def next_run(entry: ScheduleEntry, now: datetime, sent: Sent | None) -> datetime | None:
    if entry.cron is not None:
        return next_fire(entry.cron, now)
    assert entry.interval_seconds is not None  # ScheduleEntry needs one of the two
    interval = entry.interval_seconds
    if sent is not None and sent.at + timedelta(seconds=interval) > now:
        return sent.at + timedelta(seconds=interval)
    second = int(now.timestamp())
    return datetime.fromtimestamp(second - second % interval + interval, UTC)


async def _latest_rows(session: AsyncSession, task_ids: set[str]) -> dict[str, TaskExecutionLog]:
    """Each task's latest attempt: a lookup by task id, never a scan."""
    if not task_ids:
        return {}
    rows = await session.exec(
        select(TaskExecutionLog)
        .where(col(TaskExecutionLog.task_id).in_(task_ids))
        .order_by(col(TaskExecutionLog.attempt))
    )
    return {row.task_id: row for row in rows.all()}


def _started_analysis(row: TaskExecutionLog) -> str | None:
    result = row.result
    task_id = result.get("task_id") if isinstance(result, dict) else None
    return task_id if isinstance(task_id, str) else None


async def schedule_views(
    session: AsyncSession,
    redis: Redis | None,
    queue_name: str,
    entries: list[ScheduleEntry],
    now: datetime,
) -> list[ScheduleView]:
    ids = [entry.schedule_id for entry in entries]
    sent = await last_sent(redis, queue_name, ids) if redis is not None else {}
    refreshes = await _latest_rows(session, {s.task_id for s in sent.values()})
    started = {r.task_id: a for r in refreshes.values() if (a := _started_analysis(r))}
    analyses = await _latest_rows(session, set(started.values()))
    views = []
    for entry in entries:
        last = sent.get(entry.schedule_id)
        run = None
        if last is not None:
            row = refreshes.get(last.task_id)
            if row is not None and row.task_id in started:
                row = analyses.get(started[row.task_id], row)
            run = LastRun(
                task_id=row.task_id if row else last.task_id,
                task_name=row.task_name if row else "analysis.scheduled_refresh",
                status=row.status if row else "sent",  # not in the log (yet, or any more)
                at=(row.completed_at or row.created_at) if row else last.at,
            )
        views.append(ScheduleView(entry, next_run(entry, now, last), run))
    return views
