"""Read side of the lifecycle log: metrics per task name, filtered history, one task."""

from __future__ import annotations

import asyncio
import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens import rollups
from tasklens.tracking.database import own_name
from tasklens.tracking.models import (
    TaskDismissal,
    TaskDurationHistogram,
    TaskExecutionLog,
    TaskLogCount,
    TaskStatus,
    utcnow,
)

Log = TaskExecutionLog
Count = TaskLogCount
Histogram = TaskDurationHistogram
SelectT = TypeVar("SelectT", bound=sa.Select[*tuple[Any, ...]])
# The statuses, terminal (True) or not, in TaskStatus's order.
_BY_END = {end: [s for s in TaskStatus if s.is_terminal is end] for end in (True, False)}


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
    p95_duration_ms: float | None = Field(
        description="Nearest-rank p95 of successful ones: exact while the window holds up to "
        "1000 of them, else from duration histograms (within +9.05 % / -8.3 % of the exact "
        "value, and not under the average unless the exact value must be)"
    )
    success_rate: float | None = Field(description="success / finished; null if none finished")


HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    floored = floor_hour(moment)
    return floored if floored == moment else floored + HOUR


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_day(moment: datetime) -> datetime:
    floored = floor_day(moment)
    return floored if floored == moment else floored + timedelta(days=1)


@dataclass(slots=True)
class _Tally:
    by_status: dict[str, int]
    duration_count: int = 0
    duration_sum: float = 0.0


async def metrics(session: AsyncSession, window_hours: int) -> list[TaskMetrics]:
    """Every task name the log knows (`known_task_names`), those with no run in the window
    with zeros. Counts come from the hourly counts table for whole hours and from the log
    itself for the part of the window's first hour; the p95 from the duration histograms the
    same way (daily rows for whole days), so 30 days cost about what 24 hours do. A task name
    with few successful runs gets its exact p95 from the log instead (`_exact_durations`)."""
    now = utcnow()
    since = now - timedelta(hours=window_hours)
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
    bin_expr = _bin_of_log_duration(session)
    # The first, partial hour from the log in one pass: counts, sums and duration bins.
    partial_hour = (
        sa.select(
            col(Log.task_name),
            col(Log.status),
            sa.func.count(),
            sa.func.count(col(Log.duration_ms)),
            sa.func.coalesce(sa.func.sum(col(Log.duration_ms)), 0.0),
            bin_expr,
        )
        .where(col(Log.created_at) >= since, col(Log.created_at) < first_full_hour)
        .group_by(col(Log.task_name), col(Log.status), bin_expr)
    )
    tallies: dict[str, _Tally] = {}
    histograms = await _success_histograms(session, since, now)
    for query in (whole_hours, partial_hour):
        for name, status, count, duration_count, duration_sum, *index in await session.execute(
            query
        ):
            tally = tallies.setdefault(name, _Tally({}))
            tally.by_status[status] = tally.by_status.get(status, 0) + int(count)
            if status == TaskStatus.SUCCESS.value:
                tally.duration_count += int(duration_count)
                tally.duration_sum += float(duration_sum)
                if index and index[0] is not None and duration_count:
                    histogram = histograms.setdefault(name, {})
                    histogram[int(index[0])] = histogram.get(int(index[0]), 0) + int(duration_count)
    exact = await _exact_durations(
        session,
        since,
        {name: tally.duration_count for name, tally in tallies.items()},
    )
    result = []
    # Every name the log knows gets a card: the idle ones (no run in the window) with zeros.
    # (A tally of zeros is an hour whose rows retention deleted: not a name the log knows.)
    ran = {name for name, tally in tallies.items() if any(tally.by_status.values())}
    for name in sorted(ran | set(await known_task_names(session))):
        tally = tallies.get(name) or _Tally({})
        n = {s.value: tally.by_status.get(s.value, 0) for s in TaskStatus}
        finished = n["success"] + n["failed"] + n["cancelled"]
        mean = tally.duration_sum / tally.duration_count if tally.duration_count else None
        result.append(
            TaskMetrics(
                task_name=name,
                total_executions=sum(n.values()),
                pending=n["pending"],
                running=n["running"],
                success=n["success"],
                failed=n["failed"],
                cancelled=n["cancelled"],
                avg_duration_ms=mean,
                p95_duration_ms=(
                    rollups.exact_percentile(exact[name], 0.95)
                    if name in exact
                    else _estimated_p95(histograms.get(name, {}), mean)
                ),
                success_rate=(n["success"] / finished) if finished else None,
            )
        )
    return result


# Up to this many successful durations per task name (and per request) the p95 is read
# from the log and exact; beyond, it is estimated from the duration histograms.
EXACT_SAMPLES = 1000


def _estimated_p95(histogram: dict[int, int], mean: float | None) -> float | None:
    index = rollups.percentile_bin(histogram, 0.95)
    return None if index is None else rollups.consistent_value(index, mean)


async def _exact_durations(
    session: AsyncSession, since: datetime, samples: dict[str, int]
) -> dict[str, list[float]]:
    """Successful durations since `since`, per task name, for the names with few enough of
    them (fewest first, EXACT_SAMPLES in all): a fresh install's handful of runs gets its
    true p95, not a histogram bin's middle that can sit under the average."""
    chosen: list[str] = []
    budget = EXACT_SAMPLES
    for name, n in sorted(samples.items(), key=lambda item: item[1]):
        if n > budget:
            break
        budget -= n
        chosen.append(name)
    if not chosen:
        return {}
    durations: dict[str, list[float]] = {name: [] for name in chosen}
    query = sa.select(col(Log.task_name), col(Log.duration_ms)).where(
        col(Log.task_name).in_(chosen),
        col(Log.status) == TaskStatus.SUCCESS.value,
        col(Log.created_at) >= since,
        col(Log.duration_ms).is_not(None),
    )
    for name, duration in await session.execute(query):
        durations[name].append(float(duration))
    return durations


def _bin_of_log_duration(session: AsyncSession) -> sa.ColumnElement[int]:
    dialect = session.get_bind().dialect
    log = own_name("task_execution_logs", dialect)
    return sa.literal_column(rollups.bin_sql(f"{log}.duration_ms", dialect.name))


async def _success_histograms(
    session: AsyncSession, since: datetime, now: datetime
) -> dict[str, dict[int, int]]:
    """Successful durations per task name and bin from the first whole hour after `since`:
    whole days from the daily rows, the hours around them from the hourly rows (the partial
    hour before is read from the log by `metrics`)."""
    first_full_hour = ceil_hour(since)
    first_full_day, today = ceil_day(first_full_hour), floor_day(now)
    per_bin = sa.func.sum(col(Histogram.count))
    base = (
        sa.select(col(Histogram.task_name), col(Histogram.bin), per_bin)
        .where(col(Histogram.status) == TaskStatus.SUCCESS.value)
        .group_by(col(Histogram.task_name), col(Histogram.bin))
    )
    hourly = col(Histogram.grain) == 1
    daily = col(Histogram.grain) == 24
    bucket = col(Histogram.bucket)
    if first_full_day < today:
        queries = [
            base.where(hourly, bucket >= first_full_hour, bucket < first_full_day),
            base.where(daily, bucket >= first_full_day, bucket < today),
            base.where(hourly, bucket >= today),
        ]
    else:
        queries = [base.where(hourly, bucket >= first_full_hour)]
    histograms: dict[str, dict[int, int]] = {}
    for query in queries:
        for name, index, count in await session.execute(query):
            histogram = histograms.setdefault(name, {})
            histogram[int(index)] = histogram.get(int(index), 0) + int(count)
    return histograms


def _percentile_bin_per_bucket(bins: Any, percent: int = 95) -> Any:
    """The nearest-rank percentile's bin per bucket, computed in the database: a month of
    hourly histograms is ~300,000 rows, too many to ship to Python for 720 numbers. `bins`
    selects (bucket, bin, n)."""
    grouped = bins.subquery()
    running = sa.func.sum(grouped.c.n).over(partition_by=grouped.c.bucket, order_by=grouped.c.bin)
    ranked = sa.select(
        grouped.c.bucket,
        grouped.c.bin,
        running.label("running"),
        sa.func.sum(grouped.c.n).over(partition_by=grouped.c.bucket).label("total"),
    ).subquery()
    return (
        sa.select(ranked.c.bucket, sa.func.min(ranked.c.bin))
        .where(ranked.c.running * 100 >= ranked.c.total * percent, ranked.c.total > 0)
        .group_by(ranked.c.bucket)
    )


# One hour of GET /monitoring/timeseries: the API answers with it as it is (api/schemas.py).
class SeriesBucket(BaseModel):
    bucket_start: datetime = Field(description="Start of the bucket, UTC")
    total: int = Field(description="Executions created in the bucket, any status")
    pending: int = Field(description="Of those, still waiting for a worker")
    running: int = Field(description="Of those, started and not finished")
    success: int
    failed: int
    cancelled: int
    p95_duration_ms: float | None = Field(
        description="p95 of the bucket's successful durations: exact while the window holds up "
        "to 1000 of them, else from the histograms (+9.05 % / -8.3 %, not under the bucket's "
        "average unless the exact value must be); null if none succeeded"
    )


@dataclass(slots=True)
class Series:
    bucket_seconds: int
    buckets: list[SeriesBucket]


async def timeseries(session: AsyncSession, window_hours: int, task_name: str | None) -> Series:
    """Hourly buckets (every hour of the window, empty ones too) from the counts and the
    hourly duration histograms. The first bucket is the whole hour the window starts in.
    While the window holds few successful durations (EXACT_SAMPLES), each hour's p95 is
    exact, read from the log; beyond, it is the histogram's bin, kept consistent with the
    hour's mean."""
    now = utcnow()
    start = floor_hour(now - timedelta(hours=window_hours))
    counts = (
        sa.select(
            col(Count.bucket),
            col(Count.status),
            sa.func.sum(col(Count.count)),
            sa.func.sum(col(Count.duration_count)),
            sa.func.sum(col(Count.duration_sum)),
        )
        .where(col(Count.bucket) >= start)
        .group_by(col(Count.bucket), col(Count.status))
    )
    bins: Any = sa.select(
        col(Histogram.bucket).label("bucket"),
        col(Histogram.bin).label("bin"),
        sa.func.sum(col(Histogram.count)).label("n"),
    ).where(
        col(Histogram.grain) == 1,
        col(Histogram.bucket) >= start,
        col(Histogram.status) == TaskStatus.SUCCESS.value,
    )
    if task_name:
        counts = counts.where(col(Count.task_name) == task_name)
        bins = bins.where(col(Histogram.task_name) == task_name)
    by_hour: dict[datetime, dict[str, int]] = {}
    mean: dict[datetime, float] = {}
    samples = 0
    for bucket, status, count, duration_count, duration_sum in await session.execute(counts):
        tally = by_hour.setdefault(bucket, {})
        tally[status] = tally.get(status, 0) + int(count)
        if status == TaskStatus.SUCCESS.value and duration_count:
            mean[bucket] = float(duration_sum) / int(duration_count)
            samples += int(duration_count)
    if samples <= EXACT_SAMPLES:
        p95 = await _exact_p95_per_hour(session, start, task_name)
    else:
        p95 = {
            bucket: rollups.consistent_value(int(index), mean.get(bucket))
            for bucket, index in await session.execute(
                _percentile_bin_per_bucket(bins.group_by(col(Histogram.bucket), col(Histogram.bin)))
            )
        }
    buckets = []
    hour = start
    while hour <= now:
        tally = by_hour.get(hour, {})
        buckets.append(
            SeriesBucket(
                bucket_start=hour,
                total=sum(tally.values()),
                pending=tally.get(TaskStatus.PENDING.value, 0),
                running=tally.get(TaskStatus.RUNNING.value, 0),
                success=tally.get(TaskStatus.SUCCESS.value, 0),
                failed=tally.get(TaskStatus.FAILED.value, 0),
                cancelled=tally.get(TaskStatus.CANCELLED.value, 0),
                p95_duration_ms=p95.get(hour),
            )
        )
        hour += HOUR
    return Series(int(HOUR.total_seconds()), buckets)


async def _exact_p95_per_hour(
    session: AsyncSession, start: datetime, task_name: str | None
) -> dict[datetime, float]:
    query = sa.select(col(Log.created_at), col(Log.duration_ms)).where(
        col(Log.status) == TaskStatus.SUCCESS.value,
        col(Log.created_at) >= start,
        col(Log.duration_ms).is_not(None),
    )
    if task_name:
        query = query.where(col(Log.task_name) == task_name)
    per_hour: dict[datetime, list[float]] = {}
    for created_at, duration in await session.execute(query):
        per_hour.setdefault(floor_hour(created_at), []).append(float(duration))
    return {
        hour: p95
        for hour, durations in per_hour.items()
        if (p95 := rollups.exact_percentile(durations, 0.95)) is not None
    }


# The shortest text searched inside params and error messages: shorter ones have no
# trigram for the index (migration 0009) to find them by, and would read the whole log.
MIN_TEXT_SEARCH = 3
# A search counts its matches up to this many, and pages go no further; beyond, the total is
# "at least" this. Counting is most of a broad search's time (specs/benchmarks.md).
MATCH_COUNT_CAP = 5_000


def like_escaped(text: str) -> str:
    """`text` for a LIKE pattern with `\\` as the escape: its own % and _ match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class HistorySort(enum.StrEnum):
    """`created`, `started` or `duration`; a leading `-` for the largest first."""

    CREATED_DESC = "-created"
    CREATED = "created"
    STARTED_DESC = "-started"
    STARTED = "started"
    DURATION_DESC = "-duration"
    DURATION = "duration"

    def order_by(self) -> list[sa.UnaryExpression[Any]]:
        column = {
            "created": col(Log.created_at),
            "started": col(Log.started_at),
            "duration": col(Log.duration_ms),
        }[self.value.lstrip("-")]
        # Rows without the value (not started, unfinished) count as the largest, as
        # PostgreSQL's indexes hold them: both directions are a read of one index.
        if self.value.startswith("-"):
            return [column.desc().nulls_first(), col(Log.id).desc()]
        return [column.asc().nulls_last(), col(Log.id).asc()]


def not_dismissed() -> sa.ColumnElement[bool]:
    """The row's task is not dismissed from the failure views (`task_dismissals`)."""
    return ~sa.exists().where(col(TaskDismissal.task_id) == col(Log.task_id))


@dataclass(slots=True)
class HistoryFilter:
    task_name: str | None = None
    status: TaskStatus | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    queue: str | None = None
    worker: str | None = None
    q: str | None = None
    # Task names that contain `q`, resolved from the counts (`resolve_search`).
    q_task_names: list[str] | None = None
    # A failure group's fingerprint (`tasklens.failures`), and the ids of its rows, which a
    # scan of the failed rows resolves (the fingerprint is not a column).
    fingerprint: str | None = None
    row_ids: list[int] | None = None
    # Leave out tasks dismissed from the failure views ("recently failed").
    hide_dismissed: bool = False

    @property
    def needs_log_scan(self) -> bool:
        """Whether the hourly counts cannot answer how many rows match."""
        return bool(
            self.queue or self.worker or self.q or self.row_ids is not None or self.hide_dismissed
        )

    def apply(self, query: SelectT) -> SelectT:
        if self.task_name:
            query = query.where(col(Log.task_name) == self.task_name)
        if self.status:
            query = query.where(col(Log.status) == self.status.value)
        if self.start_date:
            query = query.where(col(Log.created_at) >= self.start_date)
        if self.end_date:
            query = query.where(col(Log.created_at) <= self.end_date)
        if self.queue:
            query = query.where(col(Log.queue) == self.queue)
        if self.worker:
            query = query.where(col(Log.worker) == self.worker)
        if self.q:
            query = query.where(sa.or_(*self._search_terms(self.q)))
        if self.row_ids is not None:
            query = query.where(col(Log.id).in_(self.row_ids) if self.row_ids else sa.false())
        if self.hide_dismissed:
            query = query.where(not_dismissed())
        return query

    def _search_terms(self, q: str) -> list[sa.ColumnElement[bool]]:
        """A task id starting with `q`, a task name containing it, params or error text
        containing it (from MIN_TEXT_SEARCH characters), case-insensitively for text."""
        pattern = like_escaped(q)
        terms: list[sa.ColumnElement[bool]] = [col(Log.task_id).like(f"{pattern}%", escape="\\")]
        if self.q_task_names:
            terms.append(col(Log.task_name).in_(self.q_task_names))
        if len(q) >= MIN_TEXT_SEARCH:  # the very expressions migration 0009 indexes
            contains = f"%{pattern}%"
            params = sa.cast(col(Log.params), sa.Text).ilike(contains, escape="\\")
            # Migration 0015 indexes the params of terminal rows only; those of pending and
            # running rows are found through the status index. The statuses are written out
            # (not bound) so that PostgreSQL sees the partial index's own condition.
            for terminal in (True, False):
                statuses: list[sa.ColumnElement[Any]] = [
                    sa.literal_column(f"'{s.value}'") for s in _BY_END[terminal]
                ]
                terms.append(sa.and_(col(Log.status).in_(statuses), params))
            terms.append(col(Log.error_message).ilike(contains, escape="\\"))
        return terms


async def resolve_search(session: AsyncSession, where: HistoryFilter) -> HistoryFilter:
    """The task names containing `q`, read from the small counts table, so the search
    finds a name's rows through the task-name index instead of matching text in every row."""
    if where.q:
        pattern = f"%{like_escaped(where.q)}%"
        query = (
            select(col(Count.task_name))
            .where(col(Count.task_name).ilike(pattern, escape="\\"))
            .distinct()
        )
        where.q_task_names = list((await session.exec(query)).all())
    return where


@dataclass(slots=True)
class HistoryPage:
    total_count: int
    page: int
    page_size: int
    items: list[TaskExecutionLog]
    total_is_estimate: bool = False

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
    session: AsyncSession,
    where: HistoryFilter,
    page: int,
    page_size: int,
    sort: HistorySort = HistorySort.CREATED_DESC,
) -> HistoryPage:
    """Newest first (the counts' fast path below), or by `sort`, or searched (`_searched`)."""
    if where.needs_log_scan or sort is not HistorySort.CREATED_DESC:
        return await _searched(session, await resolve_search(session, where), page, page_size, sort)
    return await _newest_first(session, where, page, page_size)


async def _searched(
    session: AsyncSession, where: HistoryFilter, page: int, page_size: int, sort: HistorySort
) -> HistoryPage:
    """A search, a filter the counts do not hold (queue, worker) or another order: matches
    are counted in the log up to MATCH_COUNT_CAP, or in the hourly counts when only the order
    differs (then the total is an estimate, "at least", past the cap), and pages go no
    further than that; the indexes of migration 0009 find them."""
    if session.get_bind().dialect.name == "postgresql":
        # Planned for this search's own values each time: after five runs PostgreSQL may keep
        # a generic plan of the prepared statement, which cannot tell a rare `ILIKE '%x%'`
        # (the trigram indexes) from a common one, and reads the whole log instead.
        await session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
    if where.needs_log_scan:
        # In the page's order: when most rows match, the planner can read the order's index
        # and stop at the cap instead of collecting every match first.
        matching = (
            where.apply(sa.select(sa.literal(1)).select_from(Log))
            .order_by(*sort.order_by())
            .limit(MATCH_COUNT_CAP + 1)
        )
        counted = int(
            (
                await session.execute(sa.select(sa.func.count()).select_from(matching.subquery()))
            ).scalar_one()
        )
    else:  # only the order differs from the newest-first path: the counts hold the total
        counted = sum(n for _, n in await _rows_per_hour(session, where))
    capped = counted > MATCH_COUNT_CAP
    total = min(counted, MATCH_COUNT_CAP)
    last_page = max(1, math.ceil(total / page_size))
    if page > last_page:
        more = f"; only the first {MATCH_COUNT_CAP} matches are paged" if capped else ""
        raise PageOutOfRange(f"page {page} is past the last page ({last_page}){more}")
    query = (
        where.apply(sa.select(Log))
        .order_by(*sort.order_by())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    items = list((await session.execute(query)).scalars().all())
    return HistoryPage(total, page, page_size, items, total_is_estimate=capped)


async def _newest_first(
    session: AsyncSession, where: HistoryFilter, page: int, page_size: int
) -> HistoryPage:
    """Newest first. The hours holding the page's first and last rows are found in the
    counts, so the page is read between those two hours' bounds (the other day partitions
    are pruned) with an OFFSET smaller than the rows of those hours: from the newer end, or
    from the older end and reversed when that is closer. Every page costs about the same,
    the last one of millions of rows too, and the total is exact."""
    hours = await _rows_per_hour(session, where)
    total = sum(n for _, n in hours)
    last_page = max(1, math.ceil(total / page_size))
    if page > last_page:
        raise PageOutOfRange(f"page {page} is past the last page ({last_page})")
    skip = (page - 1) * page_size
    take = min(page_size, total - skip)
    if take <= 0:
        return HistoryPage(total, page, page_size, [])
    newer = 0  # rows in hours newer than the page's first hour
    first = 0
    while newer + hours[first][1] <= skip:
        newer += hours[first][1]
        first += 1
    last, through = first, newer + hours[first][1]
    while through < skip + take:
        last += 1
        through += hours[last][1]
    offset = skip - newer  # from the newest row of the hours first … last
    in_window = through - newer
    bounds = (col(Log.created_at) >= hours[last][0], col(Log.created_at) < hours[first][0] + HOUR)
    from_newest = offset <= in_window - offset - take
    key = (col(Log.created_at), col(Log.id))
    order = [k.desc() for k in key] if from_newest else [k.asc() for k in key]
    # The page's first row, found in an index ending in (created_at, id) without reading the
    # rows skipped; then the page itself, a keyset read from that row.
    anchor_query = (
        where.apply(sa.select(*key))
        .where(*bounds)
        .order_by(*order)
        .offset(offset if from_newest else in_window - offset - take)
        .limit(1)
    )
    anchor = (await session.execute(anchor_query)).first()
    if anchor is None:  # rows deleted since they were counted
        return HistoryPage(total, page, page_size, [])
    from_anchor = (
        sa.tuple_(*key) <= tuple(anchor) if from_newest else sa.tuple_(*key) >= tuple(anchor)
    )
    query = where.apply(sa.select(Log)).where(*bounds, from_anchor).order_by(*order).limit(take)
    items = list((await session.execute(query)).scalars().all())
    if not from_newest:
        items.reverse()
    return HistoryPage(total, page, page_size, items)


async def task_attempts(session: AsyncSession, task_id: str) -> list[TaskExecutionLog]:
    query = select(Log).where(col(Log.task_id) == task_id).order_by(col(Log.attempt))
    return list((await session.exec(query)).all())


async def known_task_names(session: AsyncSession) -> list[str]:
    """From the hourly counts: a few thousand rows, not a scan of the whole log."""
    query = (
        select(col(Count.task_name))
        .where(col(Count.count) > 0)
        .distinct()
        .order_by(col(Count.task_name))
    )
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
