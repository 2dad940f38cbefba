from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tasklens import audit, queue_control
from tasklens.api.deps import OperatorDep, PrincipalDep, RuntimeDep
from tasklens.api.errors import ERROR_RESPONSES
from tasklens.api.schemas import (
    QueueItem,
    QueuePauseResponse,
    QueuePurgeResponse,
    QueuesResponse,
    WorkerItem,
)
from tasklens.audit import AuditAction
from tasklens.priorities import Priority
from tasklens.queues import queue_state

router = APIRouter(tags=["queues"], responses=ERROR_RESPONSES)

QueuePath = Annotated[Priority, Path(description="high, default or low")]


@router.get("/queues")
async def get_queues(runtime: RuntimeDep, _: PrincipalDep) -> QueuesResponse:
    """Depth per priority queue, and every worker seen in the last hour with its heartbeat."""
    depths, workers = await queue_state(runtime)
    return QueuesResponse(
        queues=[QueueItem.model_validate(d) for d in depths],
        workers=[WorkerItem.model_validate(w) for w in workers],
    )


@router.post("/queues/{queue}/pause")
async def pause_queue(
    runtime: RuntimeDep, principal: OperatorDep, queue: QueuePath
) -> QueuePauseResponse:
    """Workers take no new message from the queue within a second; running tasks finish.
    Messages keep waiting (and can still be enqueued) until the resume."""
    async with audit.audited(runtime.engine, principal.name, AuditAction.PAUSE, queue.value):
        await queue_control.set_paused(runtime, queue, paused=True)
    return QueuePauseResponse(queue=queue, paused=True)


@router.post("/queues/{queue}/resume")
async def resume_queue(
    runtime: RuntimeDep, principal: OperatorDep, queue: QueuePath
) -> QueuePauseResponse:
    """Workers take the queue's messages again, in order."""
    async with audit.audited(runtime.engine, principal.name, AuditAction.RESUME, queue.value):
        await queue_control.set_paused(runtime, queue, paused=False)
    return QueuePauseResponse(queue=queue, paused=False)


@router.post("/queues/{queue}/purge")
async def purge_queue(
    runtime: RuntimeDep, principal: OperatorDep, queue: QueuePath
) -> QueuePurgeResponse:
    """Removes the queue's waiting messages (not those a worker already took); each purged
    task ends `cancelled` "purged by <token name>"."""
    async with audit.audited(
        runtime.engine, principal.name, AuditAction.PURGE, queue.value
    ) as entry:
        purged = await queue_control.purge(runtime, queue, by=principal.name)
        entry.count = purged  # messages removed
    await runtime.accepted()  # the `cancelled` rows answered are logged
    return QueuePurgeResponse(queue=queue, purged=purged)
