"""Unauthenticated probes (/health, /health/live, /health/ready) and the token-guarded
/health/queue. No probe names a URL, host or secret: only which part is down."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tasklens.api.deps import PrincipalDep, RuntimeDep
from tasklens.api.errors import ERROR_RESPONSES, ErrorResponse
from tasklens.api.schemas import (
    HealthResponse,
    Liveness,
    NotReady,
    QueueHealth,
    Readiness,
    ReadinessChecks,
)
from tasklens.queues import log_losses, lost_message_count, queue_state

router = APIRouter(tags=["health"])
# A readiness probe answers within this even when a part hangs (a load balancer or compose
# healthcheck gives up after a few seconds and would count the probe itself as down).
READY_TIMEOUT_SECONDS = 2.0
T = TypeVar("T")


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "A needed part is down"}},
)
async def health(runtime: RuntimeDep) -> JSONResponse:
    """No token needed: load balancers and compose healthchecks call it."""
    database, redis_ok = await asyncio.gather(runtime.check_database(), runtime.check_redis())
    healthy = database == "ok" and redis_ok is not False
    body = HealthResponse(
        status="ok" if healthy else "degraded",
        mode="embedded" if runtime.settings.embedded else "distributed",
        database=database,
        redis="not_used" if redis_ok is None else ("ok" if redis_ok else "down"),
    )
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get("/health/live", response_model=Liveness)
async def live() -> Liveness:
    """Liveness: the process and its event loop answer. Touches neither the database nor
    Redis, so an outage of either never gets a healthy process restarted."""
    return Liveness(status="ok")


@router.get(
    "/health/ready",
    response_model=Readiness,
    responses={503: {"model": NotReady, "description": "The database or Redis is down"}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: the database and, in the distributed mode, Redis answer within
    READY_TIMEOUT_SECONDS; else 503 naming what is down (routes the traffic elsewhere)."""
    database, redis_ok = await asyncio.gather(
        _within_timeout(runtime.check_database(), "down"),
        _within_timeout(runtime.check_redis(), False),
    )
    checks = ReadinessChecks(
        database=database,
        redis="not_used" if redis_ok is None else ("ok" if redis_ok else "down"),
    )
    down = [part for part, state in checks.model_dump().items() if state not in ("ok", "not_used")]
    if not down:
        return JSONResponse(Readiness(status="ready", checks=checks).model_dump())
    body = NotReady(error=f"not ready: {' and '.join(down)} down", checks=checks)
    return JSONResponse(body.model_dump(), status_code=503)


async def _within_timeout(check: Coroutine[Any, Any, T], when_late: T) -> T:
    try:
        return await asyncio.wait_for(check, READY_TIMEOUT_SECONDS)
    except TimeoutError:
        return when_late


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
