"""Failure groups: the window's failed attempts, grouped by fingerprint (`fingerprint.py`).

The fingerprint is computed where rows are read, not stored: the failed rows of the window
are found through `ix_task_logs_status` (status, created_at, id), newest first, at most
SCAN_LIMIT of them (then `truncated`: the oldest failures of the window are left out); a row
read before keeps its signature in this process (`_SignatureCache`), so only new rows cost
the read of the last TRACEBACK_TAIL_CHARS of their traceback.
Tasks taken out of the failure views (`task_dismissals`) are left out too.
"""

from __future__ import annotations

from collections import OrderedDict
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


class _SignatureCache:
    """Signatures of failed rows already read, by (row id, task id): a failed row's error
    does not change, and reading tracebacks is most of a scan's cost (PostgreSQL
    decompresses each one), so a page refreshed every 15 s reads only the new rows'."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._by_row: OrderedDict[tuple[int, str], Signature] = OrderedDict()

    def get(self, key: tuple[int, str]) -> Signature | None:
        found = self._by_row.get(key)
        if found is not None:
            self._by_row.move_to_end(key)
        return found

    def put(self, key: tuple[int, str], value: Signature) -> None:
        self._by_row[key] = value
        if len(self._by_row) > self.size:
            self._by_row.popitem(last=False)


_CACHE = _SignatureCache(2 * SCAN_LIMIT)
_TAILS_PER_QUERY = 1000


async def scan(
    session: AsyncSession,
    since: datetime,
    until: datetime | None = None,
    *,
    include_dismissed: bool = False,
    limit: int = SCAN_LIMIT,
) -> Scan:
    """The failed attempts created in [since, until], newest first, with their signature.
    Rows first (no traceback), then the traceback tails of the rows not seen before."""
    query = (
        sa.select(
            col(Log.id),
            col(Log.created_at),
            col(Log.task_id),
            col(Log.task_name),
            col(Log.error_message),
        )
        .where(col(Log.status) == TaskStatus.FAILED.value, col(Log.created_at) >= since)
        .order_by(col(Log.created_at).desc(), col(Log.id).desc())
        .limit(limit + 1)
    )
    if until is not None:
        query = query.where(col(Log.created_at) <= until)
    if not include_dismissed:
        query = query.where(not_dismissed())
    found = list(await session.execute(query))
    truncated = len(found) > limit
    found = found[:limit]
    missing = [r.id for r in found if _CACHE.get((r.id, r.task_id)) is None]
    tails: dict[int, str | None] = {}
    for start in range(0, len(missing), _TAILS_PER_QUERY):
        chunk = missing[start : start + _TAILS_PER_QUERY]
        tail_query = sa.select(col(Log.id), _traceback_tail(session)).where(
            col(Log.id).in_(chunk), col(Log.created_at) >= since
        )
        tails.update({row_id: tail for row_id, tail in await session.execute(tail_query)})
    rows = []
    for row_id, created, task_id, name, message in found:
        key = (row_id, task_id)
        known = _CACHE.get(key)
        if known is None:
            known = signature(message, tails.get(row_id))
            _CACHE.put(key, known)
        rows.append(FailedRow(row_id, created, task_id, name, message, known))
    return Scan(rows, truncated)


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
