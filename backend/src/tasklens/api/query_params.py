"""Query strings carry only what the operation declares, each scalar at most once, and no
parameter holds a NUL byte.

FastAPI ignores unknown parameters and silently takes the last of repeated ones, so a typo
(`?pagesize=200`) or `?status=failed&status=success` answered a page that did not mean what
the caller asked. Both are a 400 naming the parameter instead.
"""

from __future__ import annotations

from collections import Counter

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tasklens.api.errors import ApiError

_DECLARED: dict[int, frozenset[str]] = {}


def _declared_names(dependant: Dependant) -> frozenset[str]:
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


async def strict_query(request: Request) -> None:
    """A router dependency: 400 on an undeclared or repeated query parameter, and on a NUL
    byte in a query or path parameter (PostgreSQL refuses it in text: it would be a 500)."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if isinstance(value, str) and "\x00" in value:
            raise ApiError(400, f"invalid {name}: contains a NUL byte")
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    declared = _DECLARED.get(id(route))
    if declared is None:
        declared = _DECLARED[id(route)] = _declared_names(route.dependant)
    counts = Counter(key for key, _ in request.query_params.multi_items())
    for name, count in counts.items():
        if name not in declared:
            accepted = ", ".join(sorted(declared)) or "none"
            raise ApiError(400, f"invalid query parameter {name!r}: unknown (accepted: {accepted})")
        if count > 1:
            raise ApiError(400, f"invalid {name}: given {count} times, at most once")
