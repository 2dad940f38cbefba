"""Failure groups: the window's failed attempts, grouped by fingerprint (`fingerprint.py`).

The fingerprint is computed where rows are read, not stored: the failed rows of the window
are found through `ix_task_logs_status` (status, created_at, id), newest first, reading
each one's error message and only the last TRACEBACK_TAIL_CHARS of its traceback, and at
most SCAN_LIMIT of them (then `truncated`: the oldest failures of the window are left out).
Tasks taken out of the failure views (`task_dismissals`) are left out too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens.failures.fingerprint import TRACEBACK_TAIL_CHARS, Signature, signature
from tasklens.monitoring import HOUR, MATCH_COUNT_CAP, HistoryFilter, floor_hour, not_dismissed
from tasklens.tracking.models import TaskExecutionLog, TaskStatus, utcnow

Log = TaskExecutionLog
# The most failed rows one look at the failures reads: at ~1 KB each, a few tens of MB.
SCAN_LIMIT = 50_000
# The most groups one answer lists (the newest first); `group_count` says how many there are.
MAX_GROUPS = 100


@dataclass(frozen=True, slots=True)
class FailedRow:
    id: int
    created_at: datetime
    task_id: str
    task_name: str
    error_message: str | None
    signature: Signature


@dataclass(slots=True)
class Scan:
    rows: list[FailedRow]  # newest first
    truncated: bool


def _traceback_tail(session: AsyncSession) -> sa.ColumnElement[str]:
    traceback = col(Log.error_traceback)
    if session.get_bind().dialect.name == "postgresql":
        return sa.func.right(traceback, TRACEBACK_TAIL_CHARS)
    return sa.func.substr(traceback, -TRACEBACK_TAIL_CHARS)


async def scan(
    session: AsyncSession,
    since: datetime,
    until: datetime | None = None,
    *,
    include_dismissed: bool = False,
    limit: int = SCAN_LIMIT,
) -> Scan:
    """The failed attempts created in [since, until], newest first, with their signature."""
    query = (
        sa.select(
            col(Log.id),
            col(Log.created_at),
            col(Log.task_id),
            col(Log.task_name),
            col(Log.error_message),
            _traceback_tail(session),
        )
        .where(col(Log.status) == TaskStatus.FAILED.value, col(Log.created_at) >= since)
        .order_by(col(Log.created_at).desc(), col(Log.id).desc())
        .limit(limit + 1)
    )
    if until is not None:
        query = query.where(col(Log.created_at) <= until)
    if not include_dismissed:
        query = query.where(not_dismissed())
    rows = [
        FailedRow(row_id, created, task_id, name, message, signature(message, tail))
        for row_id, created, task_id, name, message, tail in await session.execute(query)
    ]
    return Scan(rows[:limit], len(rows) > limit)


@dataclass(slots=True)
class FailureGroup:
    fingerprint: str
    exception_type: str
    message: str
    frame: str
    count: int
    task_ids: set[str]
    task_names: set[str]
    first_seen: datetime
    last_seen: datetime
    trend: list[int]
    sample: FailedRow
    sample_traceback: str | None = None


@dataclass(slots=True)
class FailureReport:
    window_start: datetime  # the first trend bucket's start
    groups: list[FailureGroup]
    group_count: int
    scanned: int
    truncated: bool
    generated_at: datetime = field(default_factory=utcnow)


async def failure_groups(session: AsyncSession, window_hours: int) -> FailureReport:
    """Groups of the last `window_hours`, the one whose latest failure is newest first, each
    with an hourly trend (oldest hour first, the current one last) and its newest failure's
    whole traceback as the sample."""
    now = utcnow()
    since = now - timedelta(hours=window_hours)
    start = floor_hour(since)
    hours = int((floor_hour(now) - start) / HOUR) + 1
    found = await scan(session, since)
    groups: dict[str, FailureGroup] = {}
    for row in found.rows:
        key = row.signature.fingerprint
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureGroup(
                key,
                row.signature.exception_type,
                row.signature.message,
                row.signature.frame,
                0,
                set(),
                set(),
                row.created_at,
                row.created_at,
                [0] * hours,
                row,
            )
        group.count += 1
        group.task_ids.add(row.task_id)
        group.task_names.add(row.task_name)
        group.first_seen = row.created_at  # rows come newest first
        index = min(max(int((floor_hour(row.created_at) - start) / HOUR), 0), hours - 1)
        group.trend[index] += 1
    ordered = sorted(groups.values(), key=lambda g: (g.last_seen, g.count), reverse=True)
    shown = ordered[:MAX_GROUPS]
    await _attach_tracebacks(session, shown)
    return FailureReport(start, shown, len(ordered), len(found.rows), found.truncated)


async def _attach_tracebacks(session: AsyncSession, groups: list[FailureGroup]) -> None:
    if not groups:
        return
    keys = [(g.sample.id, g.sample.created_at) for g in groups]
    query = sa.select(col(Log.id), col(Log.error_traceback)).where(
        sa.tuple_(col(Log.id), col(Log.created_at)).in_(keys)
    )
    tracebacks = {row_id: text for row_id, text in await session.execute(query)}
    for group in groups:
        group.sample_traceback = tracebacks.get(group.sample.id)


async def rows_with_fingerprint(
    session: AsyncSession,
    fingerprint: str,
    since: datetime,
    until: datetime | None = None,
    *,
    include_dismissed: bool = False,
) -> list[FailedRow]:
    """The failed attempts of one group in [since, until], newest first (within SCAN_LIMIT)."""
    found = await scan(session, since, until, include_dismissed=include_dismissed)
    return [row for row in found.rows if row.signature.fingerprint == fingerprint]


# A history filtered by fingerprint without a start looks this far back (the longest
# window GET /failures takes).
FINGERPRINT_LOOKBACK = timedelta(hours=720)


async def resolve_fingerprint(session: AsyncSession, where: HistoryFilter) -> HistoryFilter:
    """`where.row_ids`: the newest rows of `where.fingerprint` in its dates (the last
    FINGERPRINT_LOOKBACK without a start), dismissed tasks' too (the history is the log),
    one more than the history pages so its count says "at least"."""
    if where.fingerprint:
        since = where.start_date or utcnow() - FINGERPRINT_LOOKBACK
        rows = await rows_with_fingerprint(
            session, where.fingerprint, since, where.end_date, include_dismissed=True
        )
        where.row_ids = [row.id for row in rows[: MATCH_COUNT_CAP + 1]]
    return where
