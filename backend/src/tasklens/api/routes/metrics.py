"""`GET /metrics`: the Prometheus text format, for a viewer token or the scraper's own token."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST

from tasklens.api.deps import RuntimeDep, bearer, require_token
from tasklens.api.errors import ERROR_RESPONSES
from tasklens.prometheus_export import MetricsExporter
from tasklens.tokens import digest

router = APIRouter(tags=["metrics"])
# Errors stay JSON: only the 200 is Prometheus text.
_JSON_ERROR: dict[str, Any] = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
}


async def require_metrics_reader(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """TASKLENS_METRICS_TOKEN (compared as digests, in constant time) or any API token.
    The metrics token is checked here only, so it opens no other route."""
    expected = runtime.settings.metrics_token
    if credentials is not None and expected is not None:
        wanted = digest(expected.get_secret_value())
        if hmac.compare_digest(digest(credentials.credentials), wanted):
            return
    await require_token(request, runtime, credentials)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    dependencies=[Depends(require_metrics_reader)],
    responses={
        200: {"description": "Prometheus text format 0.0.4 (see README, Metrics)"},
        401: {"description": "Missing or invalid token", **_JSON_ERROR},
        429: {"description": ERROR_RESPONSES[429]["description"], **_JSON_ERROR},
    },
)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Cluster-wide figures from PostgreSQL and Redis, per-process ones labelled `process`
    or `worker`. `TASKLENS_METRICS_TOKEN` or any API token."""
    exporter: MetricsExporter = request.app.state.metrics_exporter
    return Response(await exporter.render(runtime), media_type=CONTENT_TYPE_LATEST)
