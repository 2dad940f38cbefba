from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from tasklens import monitoring
from tasklens.api.deps import PrincipalDep, RuntimeDep, SessionDep
from tasklens.api.errors import ERROR_RESPONSES, ApiError
from tasklens.api.schemas import (
    HistoryResponse,
    IsoDateTime,
    MetricsResponse,
    TaskLogItem,
    TaskMetricsItem,
    TimeseriesResponse,
)
from tasklens.failures.groups import resolve_fingerprint
from tasklens.queues import rows_dropped
from tasklens.tracking.models import TaskStatus

router = APIRouter(prefix="/monitoring", tags=["monitoring"], responses=ERROR_RESPONSES)


@router.get("/metrics")
async def get_metrics(
    session: SessionDep,
    runtime: RuntimeDep,
    _: PrincipalDep,
    time_window: Annotated[int, Query(ge=1, le=720, description="Hours back")] = 24,
) -> MetricsResponse:
    rows = await monitoring.metrics(session, time_window)
    return MetricsResponse(
        time_window_hours=time_window,
        generated_at=datetime.now(UTC),
        metrics=[TaskMetricsItem(**r.model_dump()) for r in rows],
        log_rows_dropped=await rows_dropped(runtime),
    )


@router.get("/timeseries")
async def get_timeseries(
    session: SessionDep,
    _: PrincipalDep,
    time_window: Annotated[int, Query(ge=1, le=720, description="Hours back")] = 24,
    task_name: Annotated[str | None, Query(max_length=255)] = None,
) -> TimeseriesResponse:
    """Hourly buckets for the charts, oldest first, every hour of the window (empty ones as
    zeros), from the rollups only."""
    series = await monitoring.timeseries(session, time_window, task_name or None)
    return TimeseriesResponse(
        time_window_hours=time_window,
        generated_at=datetime.now(UTC),
        bucket_seconds=series.bucket_seconds,
        series=series.buckets,
    )


# No log row is dated outside these, and hour arithmetic on them (rounding a bound to its
# hour) stays within Python's years 1-9999: a bound beyond them means "no bound".
EARLIEST_ROW = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_ROW = datetime(9999, 12, 30, tzinfo=UTC)


def utc_bound(value: datetime | None, field: str) -> datetime | None:
    """The bound in UTC (naive = UTC); a 400 when its offset takes it outside years 1-9999."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            400, f"invalid {field}: outside the supported range, years 0001 to 9999 in UTC"
        ) from None


def clamp_bound(moment: datetime | None) -> datetime | None:
    return None if moment is None else min(max(moment, EARLIEST_ROW), LATEST_ROW)


@router.get("/history")
async def get_history(
    session: SessionDep,
    _: PrincipalDep,
    task_name: Annotated[str | None, Query(max_length=255)] = None,
    status: TaskStatus | None = None,
    start_date: Annotated[IsoDateTime | None, Query(description="ISO-8601; UTC if naive")] = None,
    end_date: Annotated[IsoDateTime | None, Query(description="ISO-8601; UTC if naive")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Search: a task id starting with it, or a task name, params or error "
            f"message containing it (params and errors from {monitoring.MIN_TEXT_SEARCH} "
            "characters; case-insensitive)",
        ),
    ] = None,
    queue: Annotated[str | None, Query(max_length=255)] = None,
    worker: Annotated[str | None, Query(max_length=255, description="hostname:pid")] = None,
    sort: Annotated[
        monitoring.HistorySort,
        Query(description="created, started or duration; a leading - for the largest first"),
    ] = monitoring.HistorySort.CREATED_DESC,
    fingerprint: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9a-f]{16}$",
            description="A failure group's rows (GET /failures); without start_date, the "
            "last 720 hours",
        ),
    ] = None,
    hide_dismissed: Annotated[
        bool, Query(description="Leave out tasks dismissed from the failure views")
    ] = False,
) -> HistoryResponse:
    """Newest first unless `sort` says otherwise. A page past the last one is a 400, not an
    empty page. A search, a queue or worker filter, or another order counts its matches up
    to 5,000 (beyond, `total_is_estimate` is true and pages stop there)."""
    start, end = utc_bound(start_date, "start_date"), utc_bound(end_date, "end_date")
    if start and end and start > end:
        raise ApiError(400, "invalid start_date: it is after end_date")
    where = monitoring.HistoryFilter(
        task_name or None,
        status,
        clamp_bound(start),
        clamp_bound(end),
        queue=queue or None,
        worker=worker or None,
        q=(q or "").strip() or None,
        fingerprint=fingerprint or None,
        hide_dismissed=hide_dismissed,
    )
    where = await resolve_fingerprint(session, where)
    try:
        result = await monitoring.history(session, where, page, page_size, sort)
    except monitoring.PageOutOfRange as exc:
        raise ApiError(400, f"invalid page: {exc}") from None
    return HistoryResponse(
        total_count=result.total_count,
        page=result.page,
        page_size=result.page_size,
        total_pages=result.total_pages,
        total_is_estimate=result.total_is_estimate,
        items=[TaskLogItem.model_validate(item) for item in result.items],
    )


@router.get("/task-names")
async def get_task_names(session: SessionDep, _: PrincipalDep) -> list[str]:
    """Every task name in the log, for the history filter's dropdown."""
    return await monitoring.known_task_names(session)
