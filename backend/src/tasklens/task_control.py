"""Operator actions on one task: retry it (as a new task) or cancel it.

Retry re-sends a failed or cancelled task with the params it was logged with; an analysis
goes through the analysis service, so deduplication still holds. Params with a redacted
secret cannot be replayed: the original values were never stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel.ext.asyncio.session import AsyncSession
from taskiq import AsyncBroker

if TYPE_CHECKING:
    from tasklens.runtime import Runtime

from tasklens import monitoring
from tasklens.analyses.kinds import TASK_KINDS
from tasklens.analyses.periods import Period
from tasklens.analyses.service import Analysis, AnalysisService
from tasklens.priorities import Priority
from tasklens.tracking.lifecycle import LifecycleChange
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.redaction import REDACTED

RETRYABLE = {TaskStatus.FAILED.value, TaskStatus.CANCELLED.value}


class TaskActionRefused(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class Retried:
    task_id: str
    retry_of: str


def _has_redacted(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_redacted(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_redacted(v) for v in value)
    return bool(value == REDACTED)


async def retry(
    session: AsyncSession, broker: AsyncBroker, analyses: AnalysisService, task_id: str
) -> Retried:
    attempts = await monitoring.task_attempts(session, task_id)
    if not attempts:
        raise TaskActionRefused(404, f"no task with task_id '{task_id}'")
    last = attempts[-1]
    status = str(last.status)
    if status not in RETRYABLE:
        raise TaskActionRefused(
            409, f"task '{task_id}' is {status}; only failed or cancelled tasks can be retried"
        )
    params = dict(next((a.params for a in reversed(attempts) if a.params is not None), {}))
    if _has_redacted(params):
        raise TaskActionRefused(
            409, "its params had secrets, which were never stored; send the task again instead"
        )
    analysis = _analysis_of(analyses, last.task_name, params)
    if analysis is not None:
        submitted = await analyses.submit(analysis, force=True, priority=Priority.HIGH)
        return Retried(submitted.task_id, task_id)
    task = broker.find_task(last.task_name)
    if task is None:
        raise TaskActionRefused(
            409,
            f"task '{last.task_name}' is not registered in this "
            "TaskLens (another app's task); retry it there",
        )
    args = params.pop("_args", [])
    sent = await task.kiq(*args, **params)
    return Retried(sent.task_id, task_id)


def _analysis_of(
    analyses: AnalysisService, task_name: str, params: dict[str, Any] | None
) -> Analysis | None:
    """The analysis a task of TaskLens's own runs, or None for any other task."""
    kind = TASK_KINDS.get(task_name)
    if kind is None or not params or "subject" not in params:
        return None
    return analyses.analysis(kind, str(params["subject"]), Period(params.get("period", "all")))


@dataclass(frozen=True, slots=True)
class CancelRequested:
    task_id: str
    status: str  # "cancelled" (it had not started) or "cancelling" (it is being stopped)


async def cancel(session: AsyncSession, runtime: Runtime, task_id: str) -> CancelRequested:
    attempts = await monitoring.task_attempts(session, task_id)
    if not attempts:
        raise TaskActionRefused(404, f"no task with task_id '{task_id}'")
    last = attempts[-1]
    status = TaskStatus(last.status)
    if status.is_terminal:
        raise TaskActionRefused(409, f"task '{task_id}' is already {status.value}")
    await runtime.cancel_task(task_id)
    if status is TaskStatus.PENDING:  # it will never start: say so now
        analysis = _analysis_of(runtime.analyses, last.task_name, last.params)
        if analysis is not None:  # nor free its claim: a new request would join it
            await runtime.analyses.never_started(analysis, task_id)
        now = time.time()
        runtime.recorder.record(
            LifecycleChange(
                task_id=task_id,
                task_name=last.task_name,
                status=TaskStatus.CANCELLED,
                timestamp=now,
                attempt=last.attempt,
                completed_at=now,
                error_message="CancelledError: cancelled by an operator before it started",
            )
        )
        return CancelRequested(task_id, TaskStatus.CANCELLED.value)
    return CancelRequested(task_id, "cancelling")
