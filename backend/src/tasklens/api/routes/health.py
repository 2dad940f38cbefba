from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tasklens.api.deps import RuntimeDep
from tasklens.api.schemas import HealthResponse

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A needed part is down"}},
)
async def health(runtime: RuntimeDep) -> JSONResponse:
    """No token needed: load balancers and compose healthchecks call it."""
    database_ok = await runtime.check_database()
    redis_ok = await runtime.check_redis()
    healthy = database_ok and redis_ok is not False
    body = HealthResponse(
        status="ok" if healthy else "degraded",
        mode="embedded" if runtime.settings.embedded else "distributed",
        database="ok" if database_ok else "down",
        redis="not_used" if redis_ok is None else ("ok" if redis_ok else "down"),
    )
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
