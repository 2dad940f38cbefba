from __future__ import annotations

import random

from fastapi import APIRouter, status

from tasklens.api.deps import OperatorDep, RuntimeDep
from tasklens.api.errors import BODY_ERROR_RESPONSES, ERROR_RESPONSES, ApiError
from tasklens.api.schemas import DemoRequest, DemoResponse
from tasklens.priorities import stream_for

router = APIRouter(prefix="/demo", tags=["demo"], responses=ERROR_RESPONSES)

# (task name, weight, kwargs factory): mostly quick work, some slow with progress, some flaky.
_MIX = (
    ("demo.quick", 6, lambda i: {"n": i}),
    ("demo.slow", 1, lambda i: {"steps": 5, "step_seconds": 0.4}),
    ("demo.flaky", 3, lambda i: {"record_id": i, "failure_rate": 0.1}),
)


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=BODY_ERROR_RESPONSES)
async def enqueue_demo(body: DemoRequest, runtime: RuntimeDep, _: OperatorDep) -> DemoResponse:
    """Enqueue a mix of built-in demo tasks (quick, slow with progress; ~3% fail)."""
    names = [name for name, _w, _k in _MIX]
    weights = [w for _n, w, _k in _MIX]
    kwargs = {name: make for name, _w, make in _MIX}
    task_ids = []
    for i in range(body.count):
        name = body.task or random.choices(names, weights)[0]
        params = body.params if body.task else kwargs[name](i)
        task = runtime.broker.find_task(name)
        if task is None:
            raise ApiError(400, f"invalid task: '{name}' is not registered")
        queue = stream_for(runtime.settings.queue_name, body.priority)
        sent = (
            await task.kicker().with_labels(queue_name=queue).kiq(**(params or {}))
        )  # a broker outage is a 503 (api/errors.py)
        task_ids.append(sent.task_id)
    await runtime.accepted()
    return DemoResponse(enqueued=len(task_ids), task_ids=task_ids)
