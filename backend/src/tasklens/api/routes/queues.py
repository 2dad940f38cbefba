from __future__ import annotations

from fastapi import APIRouter

from tasklens.api.deps import PrincipalDep, RuntimeDep
from tasklens.api.errors import ERROR_RESPONSES
from tasklens.api.schemas import QueueItem, QueuesResponse, WorkerItem
from tasklens.queues import queue_state

router = APIRouter(tags=["queues"], responses=ERROR_RESPONSES)


@router.get("/queues")
async def get_queues(runtime: RuntimeDep, _: PrincipalDep) -> QueuesResponse:
    """Depth per priority queue, and every worker seen in the last hour with its heartbeat."""
    depths, workers = await queue_state(runtime)
    return QueuesResponse(
        queues=[QueueItem.model_validate(d) for d in depths],
        workers=[WorkerItem.model_validate(w) for w in workers],
    )
