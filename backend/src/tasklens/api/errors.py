"""Every error leaves as `{"error": "..."}`; a 4xx names the field, a 5xx shows no internals."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from taskiq.exceptions import SendTaskError

from tasklens.analyses.service import InvalidAnalysis, RefreshLimited
from tasklens.rate_limit import retry_after_header
from tasklens.task_control import TaskActionRefused
from tasklens.tracking.recorder import NotWritten

logger = logging.getLogger(__name__)


class ErrorResponse(BaseModel):
    error: str


class ApiError(Exception):
    def __init__(self, status_code: int, error: str, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status_code = status_code
        self.error = error
        self.headers = headers


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body", "header")]
    return ".".join(parts) or (str(loc[0]) if loc else "request")


def validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0]
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "invalid")
        return f"invalid body: not valid JSON ({reason} at character {loc[-1]})"
    if loc == ("body",) and first.get("type") == "missing":
        return "invalid body: a JSON object is required"
    return f"invalid {_field_name(loc)}: {first.get('msg', 'invalid')}"


# What FastAPI says when the body cannot even be decoded (bad UTF-8, nesting too deep for
# Python's JSON parser): said again naming the field, like every other 400.
_UNPARSABLE_BODY = "There was an error parsing the body"


def _without_fastapis_422(app: FastAPI) -> None:
    """FastAPI documents a 422 `{"detail": [...]}` on every operation with parameters; this
    API never sends one (a validation error is a 400 `{"error"}`), so the contract drops it."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        schema = default_openapi()  # cached by FastAPI: the pops below happen once
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path. Starlette names only the first route that
    matched the path, and `GET` and `POST /api/v1/analyses` are two routes."""
    allowed = [
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    _without_fastapis_422(app)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.error}, exc.status_code, headers=exc.headers)

    # What the services refuse, said once here rather than in every route.
    @app.exception_handler(InvalidAnalysis)
    async def _invalid_analysis(_: Request, exc: InvalidAnalysis) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, 400)

    @app.exception_handler(TaskActionRefused)
    async def _refused(_: Request, exc: TaskActionRefused) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, exc.status_code)

    @app.exception_handler(RefreshLimited)
    async def _limited(_: Request, exc: RefreshLimited) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc)}, 429, headers={"Retry-After": retry_after_header(exc.retry_in)}
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_message(exc)}, 400)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        error = str(exc.detail)
        if error == _UNPARSABLE_BODY:
            error = "invalid body: not parsable as JSON (bad UTF-8, or nested too deeply)"
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": _allowed_methods(request)}
        return JSONResponse({"error": error}, exc.status_code, headers=headers)

    @app.exception_handler(DBAPIError)
    async def _database_down(request: Request, exc: DBAPIError) -> JSONResponse:
        if not exc.connection_invalidated and not _is_connection_error(exc):
            return await _unexpected(request, exc)
        return _unavailable(request, "the database", exc.orig)

    @app.exception_handler(RedisError)
    async def _redis_down(request: Request, exc: RedisError) -> JSONResponse:
        return _unavailable(request, "Redis", exc)

    @app.exception_handler(SendTaskError)
    async def _broker_down(request: Request, exc: SendTaskError) -> JSONResponse:
        return _unavailable(request, "the broker (Redis)", exc.__cause__ or exc)

    @app.exception_handler(NotWritten)
    async def _not_logged(request: Request, exc: NotWritten) -> JSONResponse:
        logger.warning("%s: accepted tasks not logged: %s", request.url.path, exc)
        return JSONResponse(
            {
                "error": "the database did not take the log rows of the accepted tasks: they "
                "are queued and logged once it does (see /health); do not send them again"
            },
            503,
        )

    @app.exception_handler(OSError)
    async def _service_down(request: Request, exc: OSError) -> JSONResponse:
        return _unavailable(request, "the database or Redis", exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        # Answered by Starlette's outermost middleware, outside NoReferrer: said here too.
        return JSONResponse(
            {"error": "internal error; see the server log"},
            500,
            headers={"Referrer-Policy": "no-referrer"},
        )


def _unavailable(request: Request, what: str, cause: object) -> JSONResponse:
    logger.warning("%s unavailable on %s: %s", what, request.url.path, cause)
    return JSONResponse(
        {"error": f"{what} is unavailable; retry shortly"}, 503, headers={"Retry-After": "5"}
    )


# SQLSTATE class 08 is a connection exception; 57P01..57P03 are a server shutting down,
# crashing or still starting ("the database system is shutting down" during a restart).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _is_connection_error(exc: DBAPIError) -> bool:
    cause: BaseException | None = exc.orig
    while cause is not None:
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        cause = cause.__cause__
    text = f"{type(exc.orig).__name__} {exc.orig}".lower()
    return any(word in text for word in ("connect", "shutdown", "closed", "terminat"))


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse, "description": "Invalid parameter"},
    401: {"model": ErrorResponse, "description": "Missing or invalid token"},
    429: {
        "model": ErrorResponse,
        "description": "Too many failed token attempts from this address (Retry-After)",
    },
    503: {"model": ErrorResponse, "description": "The database or Redis is unavailable"},
}
# For the operations that take a JSON body.
BODY_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    413: {"model": ErrorResponse, "description": "Body over 1 MiB"},
    415: {"model": ErrorResponse, "description": "Body not sent as application/json"},
}
