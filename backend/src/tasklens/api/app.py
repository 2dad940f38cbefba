"""The FastAPI application: thin routes over the runtime built at startup."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from tasklens.api.body_limit import BodyLimit
from tasklens.api.errors import install_error_handlers
from tasklens.api.live_messages import add_to_openapi
from tasklens.api.referrer_policy import NoReferrer
from tasklens.api.routes import (
    alerts,
    analyses,
    audit,
    demo,
    failures,
    health,
    live,
    me,
    metrics,
    monitoring,
    queues,
    schedules,
    tasks,
)
from tasklens.api.spa import mount_spa
from tasklens.api.strict_requests import strict_request
from tasklens.gc_pauses import settle_after_startup
from tasklens.log_setup import announce
from tasklens.process import serve_runtime
from tasklens.prometheus_export import MetricsExporter
from tasklens.settings import Settings, get_settings

logger = logging.getLogger("tasklens")
API_PREFIX = "/api/v1"


def dashboard_url(settings: Settings, token: str) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    return f"http://{host}:{settings.port}/monitoring?token={token}"


def create_app(settings: Settings | None = None, *, settle_gc: bool = False) -> FastAPI:
    """`settle_gc`: in the process `tasklens serve` runs, tune the garbage collector once
    started (gc_pauses.py); not in a test's process, whose objects are not a server's."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = serve_runtime(settings)
        app.state.runtime = runtime
        await runtime.start()
        if settle_gc:
            settle_after_startup()
        if runtime.first_start_token:
            # Printed once, like Jupyter: only its digest is stored.
            announce(
                settings,
                "\n  TaskLens is running. Your admin token (shown only this once):\n"
                f"    {runtime.first_start_token}\n"
                f"  Open the dashboard: {dashboard_url(settings, runtime.first_start_token)}\n",
            )
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="TaskLens",
        version="0.1.0",
        summary="TaskIQ background tasks with a lifecycle log and a live dashboard",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(NoReferrer)  # outside BodyLimit: its 413 gets the header too
    strict = [Depends(strict_request)]
    app.include_router(health.router, dependencies=strict)
    app.state.metrics_exporter = MetricsExporter()
    app.include_router(metrics.router, dependencies=strict)
    # Each module's router straight on the app, not through one `/api/v1` router: FastAPI
    # matches a request router by router, and every level of inclusion is paid again for
    # each router it tries before the right one.
    routes = (monitoring, tasks, failures, analyses, queues, schedules, audit, alerts, demo, me)
    for module in routes:
        app.include_router(module.router, prefix=API_PREFIX, dependencies=strict)
    app.include_router(live.router, prefix=API_PREFIX)  # the socket reads `?token=` itself
    mount_spa(app)

    def openapi_with_live_messages() -> dict[str, Any]:
        """FastAPI's document plus the WebSocket's messages, which it cannot describe."""
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            add_to_openapi(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi_with_live_messages  # type: ignore[method-assign]
    return app


def create_served_app() -> FastAPI:
    """The factory each of `tasklens serve`'s API processes builds its app with."""
    return create_app(settle_gc=True)


def openapi_document() -> str:
    """The contract checked in as specs/openapi.json (CI fails when they differ)."""
    import json

    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", api_tokens=[]))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
