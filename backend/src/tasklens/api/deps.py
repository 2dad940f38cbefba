"""Request-scoped dependencies: the runtime, a DB session, the caller's identity."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection

from tasklens.api.errors import ApiError
from tasklens.auth_throttle import Throttled
from tasklens.rate_limit import retry_after_header
from tasklens.runtime import Runtime
from tasklens.tokens import Principal


async def get_runtime(request: Request) -> Runtime:
    """Async, though it awaits nothing: FastAPI runs a plain function in its thread pool,
    a hand-off to another thread and back on every request."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
bearer = HTTPBearer(auto_error=False, description="A TaskLens API token")


def client_address(connection: HTTPConnection) -> str:
    """The peer's address (X-Forwarded-For only from TASKLENS_TRUSTED_PROXIES: cli.py)."""
    return connection.client.host if connection.client else "unknown"


async def require_token(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    token = credentials.credentials if credentials else None
    try:
        principal = await runtime.throttle.authenticate(client_address(request), token)
    except Throttled as exc:
        raise ApiError(
            429, str(exc), headers={"Retry-After": retry_after_header(exc.retry_in)}
        ) from None
    if principal is None:
        raise ApiError(
            401,
            "missing or invalid token: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


async def require_operator(principal: Annotated[Principal, Depends(require_token)]) -> Principal:
    if not principal.can_operate:
        raise ApiError(403, f"token '{principal.name}' is a viewer; this needs an operator")
    return principal


PrincipalDep = Annotated[Principal, Depends(require_token)]
OperatorDep = Annotated[Principal, Depends(require_operator)]
