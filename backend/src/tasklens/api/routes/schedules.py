from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter

from tasklens.api.deps import PrincipalDep, RuntimeDep, SessionDep
from tasklens.api.errors import ERROR_RESPONSES
from tasklens.api.schemas import ScheduleItem, ScheduleLastRun, SchedulesResponse
from tasklens.schedule_runs import schedule_views
from tasklens.schedules import SchedulesFileError, load_schedules

router = APIRouter(tags=["schedules"], responses=ERROR_RESPONSES)


@router.get("/schedules")
async def get_schedules(
    runtime: RuntimeDep, session: SessionDep, _: PrincipalDep
) -> SchedulesResponse:
    """Each entry of `TASKLENS_SCHEDULES_FILE` with its next run (UTC) and the outcome of the
    task it last sent; `configured: false` without a schedules file."""
    path = runtime.settings.schedules_file
    if path is None:
        return SchedulesResponse(configured=False, error=None, schedules=[])
    try:
        entries = await asyncio.to_thread(load_schedules, path)
    except SchedulesFileError as exc:  # a broken edit: the schedulers keep the last good one
        return SchedulesResponse(configured=True, error=str(exc), schedules=[])
    now = datetime.now(UTC)
    views = await schedule_views(session, runtime.redis, runtime.settings.queue_name, entries, now)
    return SchedulesResponse(
        configured=True,
        error=None,
        schedules=[
            ScheduleItem(
                schedule_id=v.entry.schedule_id,
                kind=v.entry.kind.value,
                subject=v.entry.subject,
                period=v.entry.period.value if v.entry.period else None,
                cron=v.entry.cron,
                interval_seconds=v.entry.interval_seconds,
                next_run_at=v.next_run_at,
                last_run=None
                if v.last_run is None
                else ScheduleLastRun(
                    task_id=v.last_run.task_id,
                    task_name=v.last_run.task_name,
                    status=v.last_run.status,
                    at=v.last_run.at,
                ),
            )
            for v in views
        ],
    )
