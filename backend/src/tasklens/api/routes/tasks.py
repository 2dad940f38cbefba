from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Response

from tasklens import audit, monitoring, task_control
from tasklens.api.deps import OperatorDep, PrincipalDep, RuntimeDep, SessionDep
from tasklens.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from tasklens.api.schemas import AttemptItem, CancelResponse, RetryResponse, TaskDetail
from tasklens.audit import AuditAction
from tasklens.tracking.models import TaskExecutionLog, TaskStatus

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=ERROR_RESPONSES)

TaskIdInPath = Annotated[str, Path(max_length=64)]
# What a task's detail says as its latest attempt has it (the rest: from its first, or all).
_LATEST_ATTEMPTS = (
    "task_name",
    "status",
    "queue",
    "worker",
    "progress",
    "progress_message",
    "result",
    "completed_at",
    "duration_ms",
    "error_message",
)
Route = TypeVar("Route", bound=Callable[..., Any])


def _action(name: str) -> Callable[[Route], Route]:
    """A control action on one task: accepted (202), no such task (404), or not now (409)."""
    responses: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
    }
    return router.post(f"/{{task_id}}/{name}", status_code=202, responses=responses)


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
    task_id: TaskIdInPath,
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
        **{column: getattr(last, column) for column in _LATEST_ATTEMPTS},
        task_id=task_id,
        params=last.params if last.params is not None else first.params,
        created_at=first.created_at,
        started_at=first.started_at,
        retry_at=_retry_at(last),
        attempts=[AttemptItem.model_validate(a) for a in attempts],
    )


def _retry_at(last: TaskExecutionLog) -> datetime | None:
    """The next attempt's start while it waits out its delay: a page counts down to it."""
    due = last.run_at
    if last.status != TaskStatus.PENDING or due is None or due <= datetime.now(UTC):
        return None
    return due


@_action("retry")
async def retry_task(
    session: SessionDep, runtime: RuntimeDep, principal: OperatorDep, task_id: TaskIdInPath
) -> RetryResponse:
    """Send a failed or cancelled task again, as a new task with the same params."""
    async with audit.audited(runtime.engine, principal.name, AuditAction.RETRY, task_id) as entry:
        retried = await task_control.retry(session, runtime.broker, runtime.analyses, task_id)
        entry.detail["new_task_id"] = retried.task_id
    await runtime.accepted()
    return RetryResponse(task_id=retried.task_id, retry_of=retried.retry_of)


@_action("cancel")
async def cancel_task(
    session: SessionDep, runtime: RuntimeDep, principal: OperatorDep, task_id: TaskIdInPath
) -> CancelResponse:
    """A pending task never starts (`cancelled` at once); a running one is stopped within
    about a second (`cancelling`, then `cancelled` in the log). A finished task is a 409."""
    async with audit.audited(runtime.engine, principal.name, AuditAction.CANCEL, task_id) as entry:
        requested = await task_control.cancel(session, runtime, task_id)
        entry.detail["status"] = requested.status
    await runtime.accepted()  # a `cancelled` answered is logged
    return CancelResponse(task_id=requested.task_id, status=requested.status)
