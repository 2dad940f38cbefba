from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from tasklens import audit, monitoring, task_control
from tasklens.api.deps import OperatorDep, PrincipalDep, RuntimeDep, SessionDep
from tasklens.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from tasklens.api.schemas import AttemptItem, CancelResponse, RetryResponse, TaskDetail
from tasklens.audit import AuditAction

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=ERROR_RESPONSES)


_MISSING_OK = (
    "Answer 204 (no body) instead of 404 while no row of the task exists: for a page that "
    "follows a task it was just handed, whose `pending` row may not be written yet."
)


@router.get(
    "/{task_id}",
    response_model=TaskDetail,
    responses={
        204: {"description": "With `missing_ok`: no row of this task (yet)"},
        404: {"model": ErrorResponse},
    },
)
async def get_task(
    session: SessionDep,
    _: PrincipalDep,
    task_id: Annotated[str, Path(max_length=64)],
    missing_ok: Annotated[bool, Query(description=_MISSING_OK)] = False,
) -> TaskDetail | Response:
    """The task's latest attempt, with every attempt's outcome."""
    attempts = await monitoring.task_attempts(session, task_id)
    if not attempts:
        # A poll of a task not logged yet is not an error: a 404 would be one in the
        # browser's console on every poll until the row lands.
        if missing_ok:
            return Response(status_code=204)
        raise ApiError(404, f"no task with task_id '{task_id}'")
    first, last = attempts[0], attempts[-1]
    return TaskDetail(
        task_id=task_id,
        task_name=last.task_name,
        status=last.status,
        queue=last.queue,
        worker=last.worker,
        progress=last.progress,
        progress_message=last.progress_message,
        params=last.params if last.params is not None else first.params,
        result=last.result,
        created_at=first.created_at,
        started_at=first.started_at,
        completed_at=last.completed_at,
        duration_ms=last.duration_ms,
        error_message=last.error_message,
        attempts=[AttemptItem.model_validate(a) for a in attempts],
    )


@router.post(
    "/{task_id}/retry",
    status_code=202,
    responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
)
async def retry_task(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: OperatorDep,
    task_id: Annotated[str, Path(max_length=64)],
) -> RetryResponse:
    """Send a failed or cancelled task again, as a new task with the same params."""
    async with audit.audited(runtime.engine, principal.name, AuditAction.RETRY, task_id) as entry:
        retried = await task_control.retry(session, runtime.broker, runtime.analyses, task_id)
        entry.detail["new_task_id"] = retried.task_id
    await runtime.accepted()
    return RetryResponse(task_id=retried.task_id, retry_of=retried.retry_of)


@router.post(
    "/{task_id}/cancel",
    status_code=202,
    responses={404: {"model": ErrorResponse}, 409: {"model": ErrorResponse}},
)
async def cancel_task(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: OperatorDep,
    task_id: Annotated[str, Path(max_length=64)],
) -> CancelResponse:
    """A pending task never starts (`cancelled` at once); a running one is stopped within
    about a second (`cancelling`, then `cancelled` in the log). A finished task is a 409."""
    async with audit.audited(runtime.engine, principal.name, AuditAction.CANCEL, task_id) as entry:
        requested = await task_control.cancel(session, runtime, task_id)
        entry.detail["status"] = requested.status
    await runtime.accepted()  # a `cancelled` answered is logged
    return CancelResponse(task_id=requested.task_id, status=requested.status)
