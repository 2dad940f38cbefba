from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tasklens.api.deps import PrincipalDep, RuntimeDep
from tasklens.api.errors import ERROR_RESPONSES, ErrorResponse
from tasklens.api.schemas import HealthResponse, QueueHealth
from tasklens.queues import log_losses, lost_message_count, queue_state

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A needed part is down"}},
)
async def health(runtime: RuntimeDep) -> JSONResponse:
    """No token needed: load balancers and compose healthchecks call it."""
    database = await runtime.check_database()
    redis_ok = await runtime.check_redis()
    healthy = database == "ok" and redis_ok is not False
    body = HealthResponse(
        status="ok" if healthy else "degraded",
        mode="embedded" if runtime.settings.embedded else "distributed",
        database=database,
        redis="not_used" if redis_ok is None else ("ok" if redis_ok else "down"),
    )
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get(
    "/health/queue",
    response_model=QueueHealth,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid token"},
        429: ERROR_RESPONSES[429],
        503: {"model": QueueHealth, "description": "No worker online"},
    },
)
async def queue_health(runtime: RuntimeDep, _: PrincipalDep) -> JSONResponse:
    """Broker reachable (else 503 from the error handlers), workers online, depths.
    Unlike /health it needs a token: it tells how busy the deployment is."""
    depths, workers = await queue_state(runtime)
    online = sum(1 for w in workers if w["online"])
    dropped, unwritten = await log_losses(runtime)
    body = QueueHealth(
        status="ok" if online else "degraded",
        broker="ok",
        workers_online=online,
        depths={d.name: d.depth for d in depths},
        log_rows_dropped=dropped,
        log_batches_unwritten=unwritten,
        lost_messages=await lost_message_count(runtime),
    )
    return JSONResponse(body.model_dump(), status_code=200 if online else 503)
