from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from tasklens import audit, monitoring
from tasklens.analyses import results
from tasklens.analyses.kinds import AnalysisKind
from tasklens.analyses.periods import Period
from tasklens.analyses.service import Analysis, age_seconds
from tasklens.api.deps import OperatorDep, PrincipalDep, RuntimeDep, SessionDep
from tasklens.api.errors import BODY_ERROR_RESPONSES, ERROR_RESPONSES, ApiError, ErrorResponse
from tasklens.api.schemas import (
    AnalysisRequest,
    AnalysisSubmitted,
    AnalysisSummary,
    AnalysisView,
    RecentAnalyses,
    RefreshHistory,
    RefreshItem,
    SyncAnalysisResponse,
)
from tasklens.audit import AuditAction
from tasklens.tracking.models import TaskStatus

router = APIRouter(prefix="/analyses", tags=["analyses"], responses=ERROR_RESPONSES)


async def analysis_in_path(
    kind: AnalysisKind,
    subject: Annotated[str, Path(max_length=2000)],
    runtime: RuntimeDep,
    period: Annotated[Period | None, Query()] = None,
) -> Analysis:
    """The analysis a `/{kind}/{subject}` route names: its subject checked (a 400 naming
    it), its period the kind's default when the query asks none. Async so that FastAPI
    does not hand it to its thread pool."""
    return runtime.analyses.analysis(kind, subject, period)


# After the caller's identity in a route's parameters: a stranger gets a 401, not a 400.
AnalysisInPath = Annotated[Analysis, Depends(analysis_in_path)]


@router.get("")
async def recent_analyses(
    runtime: RuntimeDep,
    session: SessionDep,
    _: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> RecentAnalyses:
    """Cached reports, newest first, with their freshness (results left out: open one with
    GET /api/v1/analyses/{kind}/{subject})."""
    records = await results.recent(session, limit)
    return RecentAnalyses(
        items=[
            AnalysisSummary(
                kind=AnalysisKind(r.kind),
                subject=r.subject,
                period=Period(r.params.get("period", Period.ALL.value)),
                created_at=r.created_at,
                cache_age_seconds=age_seconds(r),
                is_stale=runtime.analyses.is_stale(r),
                task_id=r.task_id,
            )
            for r in records
        ]
    )


@router.post(
    "",
    status_code=202,
    responses={
        **BODY_ERROR_RESPONSES,
        200: {"model": AnalysisSubmitted, "description": "A fresh cached result"},
        202: {"model": AnalysisSubmitted, "description": "Queued, or joined the identical one"},
        403: {"model": ErrorResponse},
        429: {"model": ErrorResponse, "description": "Refresh limit; see Retry-After"},
        503: {"model": ErrorResponse},
    },
)
async def submit_analysis(
    body: AnalysisRequest, runtime: RuntimeDep, principal: OperatorDep
) -> JSONResponse:
    """Runs the analysis in the background and answers at once. An identical analysis (same
    kind, subject and params) already queued or running answers its task id instead.
    `force` runs it even if a fresh result exists, within the per-token refresh limit
    (429 with Retry-After past it)."""
    analysis = runtime.analyses.analysis(body.kind, body.subject, body.params.period)
    if body.force:
        target = f"{body.kind.value}/{body.subject}"
        async with audit.audited(runtime.engine, principal.name, AuditAction.REFRESH, target) as e:
            async with runtime.sessions() as session:  # only a refresh writes a row
                submitted = await runtime.analyses.refresh(
                    session, analysis, principal.name, body.priority
                )
            e.detail["task_id"] = submitted.task_id
            e.detail["deduplicated"] = int(submitted.deduplicated)
    else:
        submitted = await runtime.analyses.submit(analysis, priority=body.priority)
    if not submitted.cached:
        await runtime.accepted()
    payload = AnalysisSubmitted(
        task_id=submitted.task_id,
        status=submitted.status,
        deduplicated=submitted.deduplicated,
        cached=submitted.cached,
    )
    return JSONResponse(payload.model_dump(mode="json"), 200 if submitted.cached else 202)


@router.post(
    "/sync",
    responses={
        **BODY_ERROR_RESPONSES,
        403: {"model": ErrorResponse},
        504: {
            "model": ErrorResponse,
            "description": "Still running at the timeout: poll GET /api/v1/tasks/{id}",
        },
    },
)
async def run_analysis_now(
    body: AnalysisRequest,
    runtime: RuntimeDep,
    _: OperatorDep,
    timeout: Annotated[float, Query(gt=0, le=120, description="Seconds to wait")] = 30,
) -> JSONResponse:
    """For quick analyses: run it (or join the identical one running, or take the fresh
    cached result) and wait for the outcome within the request."""
    analysis = runtime.analyses.analysis(body.kind, body.subject, body.params.period)
    submitted = await runtime.analyses.submit(analysis, priority=body.priority)
    if submitted.cached:
        record = await results.read(runtime.engine, analysis.key)
        if record is not None:
            fresh = SyncAnalysisResponse(
                task_id=record.task_id,
                status=TaskStatus.SUCCESS,
                cached=True,
                result=record.result,
                error_message=None,
            )
            return JSONResponse(fresh.model_dump(mode="json"))
    finished = await monitoring.wait_until_finished(runtime.sessions, submitted.task_id, timeout)
    if finished is None:
        return JSONResponse(
            {
                "error": f"still running after {timeout:g} s; poll "
                f"GET /api/v1/tasks/{submitted.task_id}",
                "task_id": submitted.task_id,
            },
            504,
        )
    body_out = SyncAnalysisResponse(
        task_id=submitted.task_id,
        status=finished.status,
        cached=submitted.cached,
        result=finished.result if isinstance(finished.result, dict) else None,
        error_message=finished.error_message,
    )
    return JSONResponse(body_out.model_dump(mode="json"))


@router.get(
    "/{kind}/{subject:path}/refreshes",
    # A subject the path cannot carry (a line break) matches no route at all.
    responses={404: {"model": ErrorResponse}},
)
async def get_refreshes(
    runtime: RuntimeDep, session: SessionDep, principal: PrincipalDep, analysis: AnalysisInPath
) -> RefreshHistory:
    """Forced refreshes of this analysis, newest first: who (token name), when, the task,
    its outcome and duration; and how many the caller's token has left in this window."""
    records = await runtime.analyses.refreshes(session, analysis)
    left, limit, window = await runtime.analyses.refreshes_left(principal.name)
    return RefreshHistory(
        kind=analysis.kind,
        subject=analysis.subject,
        period=analysis.period,
        refreshes=[RefreshItem.model_validate(r) for r in records],
        refreshes_left=left,
        refresh_limit=limit,
        refresh_window_seconds=window,
    )


@router.get(
    "/{kind}/{subject:path}",
    responses={
        200: {
            "model": AnalysisView,
            "description": "The cached result, or none yet and the run that failed",
        },
        202: {"model": AnalysisView, "description": "No result yet; being generated"},
        404: {"model": ErrorResponse},
        503: {
            "model": ErrorResponse,
            "description": "The database is unavailable, or Redis is and there is no result",
        },
    },
)
async def get_analysis(
    runtime: RuntimeDep, session: SessionDep, principal: PrincipalDep, analysis: AnalysisInPath
) -> JSONResponse:
    """The cached result with its freshness. For an operator, a stale or missing result is
    regenerated in the background (the stale one is still returned); a viewer gets what
    there is. A run that failed (or was cancelled) within the stale interval is named
    (`failed_task_id`) and not started again by reading: retry it with
    POST /api/v1/tasks/{id}/retry. With Redis unreachable a cached result is still served
    (`live_unavailable`); a missing one an operator would have generated is a 503."""
    view = await runtime.analyses.view(session, analysis, may_regenerate=principal.can_operate)
    if view.regenerating_task_id is not None:
        await runtime.accepted()
    if view.record is None and view.regenerating_task_id is None and view.failed_task_id is None:
        raise ApiError(
            404,
            f"no {analysis.kind.value} analysis of '{analysis.subject}' yet; "
            "an operator can run it",
        )
    record = view.record
    body = AnalysisView(
        kind=analysis.kind,
        subject=analysis.subject,
        period=analysis.period,
        result=record.result if record else None,
        created_at=record.created_at if record else None,
        cache_age_seconds=age_seconds(record) if record else None,
        is_stale=view.is_stale,
        is_regenerating=view.regenerating_task_id is not None,
        task_id=view.regenerating_task_id or (record.task_id if record else None),
        live_unavailable=view.live_unavailable,
        failed_task_id=view.failed_task_id,
        attempts_allowed=runtime.settings.max_retries + 1,
    )
    generating = record is None and view.regenerating_task_id is not None
    return JSONResponse(body.model_dump(mode="json"), 202 if generating else 200)
