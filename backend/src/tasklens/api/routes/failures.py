"""Failure groups, and the bulk actions on them or on a history filter's failed tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from tasklens import audit, monitoring
from tasklens.api.deps import OperatorDep, PrincipalDep, RuntimeDep, SessionDep
from tasklens.api.errors import BODY_ERROR_RESPONSES, ERROR_RESPONSES, ApiError
from tasklens.api.routes.monitoring import clamp_bound, utc_bound
from tasklens.api.schemas import (
    BulkRetryResponse,
    DismissResponse,
    FailureFilterRequest,
    FailureGroupItem,
    FailuresResponse,
    GroupActionRequest,
    RetryResponse,
    SkippedTask,
)
from tasklens.audit import AuditAction, AuditRecord
from tasklens.failures import actions, groups
from tasklens.monitoring import HOUR
from tasklens.runtime import Runtime
from tasklens.tokens import Principal
from tasklens.tracking.models import utcnow

router = APIRouter(prefix="/failures", tags=["failures"], responses=ERROR_RESPONSES)

Fingerprint = Annotated[
    str, Path(pattern=r"^[0-9a-f]{16}$", description="A group's 16 hex characters")
]


@router.get("")
async def get_failures(
    session: SessionDep,
    _: PrincipalDep,
    time_window: Annotated[int, Query(ge=1, le=720, description="Hours back")] = 24,
) -> FailuresResponse:
    """Failed attempts of the window grouped by fingerprint (exception type, message with
    numbers, ids, hex and paths normalised, innermost frame of the app's code), the group
    whose latest failure is newest first. Dismissed tasks are left out."""
    report = await groups.failure_groups(session, time_window)
    return FailuresResponse(
        time_window_hours=time_window,
        generated_at=report.generated_at,
        bucket_seconds=int(HOUR.total_seconds()),
        trend_start=report.window_start,
        group_count=report.group_count,
        scanned=report.scanned,
        truncated=report.truncated,
        groups=[
            FailureGroupItem(
                fingerprint=g.fingerprint,
                exception_type=g.exception_type,
                message=g.message,
                frame=g.frame,
                count=g.count,
                tasks=len(g.task_ids),
                task_names=sorted(g.task_names),
                first_seen=g.first_seen,
                last_seen=g.last_seen,
                trend=g.trend,
                sample_task_id=g.sample.task_id,
                sample_error_message=g.sample.error_message,
                sample_traceback=g.sample_traceback,
            )
            for g in report.groups
        ],
    )


@asynccontextmanager
async def _audited(
    runtime: Runtime,
    principal: Principal,
    action: AuditAction,
    target: str,
    dry_run: bool,
    detail: dict[str, str | int],
) -> AsyncIterator[AuditRecord]:
    """The action on record (`count`: tasks retried or dismissed); a dry run acts on
    nothing, so it is not an action."""
    if dry_run:
        yield AuditRecord()
        return
    async with audit.audited(runtime.engine, principal.name, action, target) as entry:
        entry.detail.update(detail)
        yield entry


def _filter_detail(body: FailureFilterRequest) -> dict[str, str | int]:
    """The filter's fields that were set, each cut short (no secret is a filter's field)."""
    fields = body.model_dump(exclude={"dry_run"}, exclude_none=True, mode="json")
    return {key: str(value)[:100] for key, value in fields.items()}


async def _group_tasks(
    session: SessionDep, fingerprint: str, body: GroupActionRequest
) -> list[str]:
    since = utcnow() - timedelta(hours=body.time_window)
    rows = await groups.rows_with_fingerprint(session, fingerprint, since)
    return actions.distinct_tasks(row.task_id for row in rows)


async def _filter_tasks(session: SessionDep, body: FailureFilterRequest) -> list[str]:
    start, end = utc_bound(body.start_date, "start_date"), utc_bound(body.end_date, "end_date")
    if start and end and start > end:
        raise ApiError(400, "invalid start_date: it is after end_date")
    where = monitoring.HistoryFilter(
        body.task_name or None,
        None,
        clamp_bound(start),
        clamp_bound(end),
        queue=body.queue or None,
        worker=body.worker or None,
        q=(body.q or "").strip() or None,
        fingerprint=body.fingerprint or None,
    )
    where = await groups.resolve_fingerprint(
        session, await monitoring.resolve_search(session, where)
    )
    return await actions.tasks_matching(session, where)


async def _retry(
    session: SessionDep, runtime: Runtime, principal: Principal, task_ids: list[str], dry_run: bool
) -> BulkRetryResponse:
    cap = runtime.settings.bulk_retry_max
    if dry_run:
        matched = len(await actions.still_failed(session, task_ids))
        return BulkRetryResponse(
            dry_run=True,
            matched=matched,
            cap=cap,
            to_retry=min(matched, cap),
            remaining=max(matched - cap, 0),
            retried=[],
            skipped=[],
        )
    outcome = await actions.bulk_retry(
        session, runtime.broker, runtime.analyses, principal.name, task_ids, cap
    )
    await runtime.accepted()
    return BulkRetryResponse(
        dry_run=False,
        matched=outcome.matched,
        cap=cap,
        to_retry=min(outcome.matched, cap),
        remaining=max(outcome.matched - cap, 0),
        retried=[RetryResponse(task_id=r.task_id, retry_of=r.retry_of) for r in outcome.retried],
        skipped=[SkippedTask(task_id=s.task_id, error=s.error) for s in outcome.skipped],
    )


async def _dismiss(
    session: SessionDep, principal: Principal, task_ids: list[str], dry_run: bool
) -> DismissResponse:
    if dry_run:
        return DismissResponse(dry_run=True, matched=len(task_ids), dismissed=0)
    dismissed = await actions.dismiss(session, principal.name, task_ids)
    return DismissResponse(dry_run=False, matched=len(task_ids), dismissed=dismissed)


GroupBody = Annotated[GroupActionRequest | None, Body()]


@router.post("/{fingerprint}/retry", status_code=202, responses=BODY_ERROR_RESPONSES)
async def retry_group(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: OperatorDep,
    fingerprint: Fingerprint,
    body: GroupBody = None,
) -> BulkRetryResponse:
    """Retry the group's failed tasks of the window (those whose latest attempt failed),
    newest first, at most TASKLENS_BULK_RETRY_MAX; each becomes a new task and the original
    leaves the failure views. `dry_run` only counts them."""
    body = body or GroupActionRequest()
    detail: dict[str, str | int] = {"time_window": body.time_window}
    action = AuditAction.BULK_RETRY
    async with _audited(runtime, principal, action, fingerprint, body.dry_run, detail) as entry:
        task_ids = await _group_tasks(session, fingerprint, body)
        response = await _retry(session, runtime, principal, task_ids, body.dry_run)
        entry.count = len(response.retried)
    return response


@router.post("/{fingerprint}/dismiss", responses=BODY_ERROR_RESPONSES)
async def dismiss_group(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: OperatorDep,
    fingerprint: Fingerprint,
    body: GroupBody = None,
) -> DismissResponse:
    """Take the group's failed tasks of the window out of the failure views (the group, the
    "recently failed" list); their log rows stay."""
    body = body or GroupActionRequest()
    detail: dict[str, str | int] = {"time_window": body.time_window}
    action = AuditAction.DISMISS
    async with _audited(runtime, principal, action, fingerprint, body.dry_run, detail) as entry:
        task_ids = await _group_tasks(session, fingerprint, body)
        response = await _dismiss(session, principal, task_ids, body.dry_run)
        entry.count = response.dismissed
    return response


@router.post("/retry", status_code=202, responses=BODY_ERROR_RESPONSES)
async def retry_matching(
    session: SessionDep, runtime: RuntimeDep, principal: OperatorDep, body: FailureFilterRequest
) -> BulkRetryResponse:
    """Retry every failed task matching a history filter, as `POST /failures/{fp}/retry`."""
    detail = _filter_detail(body)
    action = AuditAction.BULK_RETRY
    target = "history filter"
    async with _audited(runtime, principal, action, target, body.dry_run, detail) as entry:
        task_ids = await _filter_tasks(session, body)
        response = await _retry(session, runtime, principal, task_ids, body.dry_run)
        entry.count = len(response.retried)
    return response


@router.post("/dismiss", responses=BODY_ERROR_RESPONSES)
async def dismiss_matching(
    session: SessionDep, runtime: RuntimeDep, principal: OperatorDep, body: FailureFilterRequest
) -> DismissResponse:
    """Dismiss every failed task matching a history filter from the failure views."""
    detail = _filter_detail(body)
    action = AuditAction.DISMISS
    target = "history filter"
    async with _audited(runtime, principal, action, target, body.dry_run, detail) as entry:
        task_ids = await _filter_tasks(session, body)
        response = await _dismiss(session, principal, task_ids, body.dry_run)
        entry.count = response.dismissed
    return response
