"""Requests say exactly what they mean, or get a 4xx naming what is wrong.

- Query strings carry only what the operation declares, each scalar at most once. FastAPI
  ignores unknown parameters and silently takes the last of repeated ones, so a typo
  (`?pagesize=200`) or `?status=failed&status=success` answered a page that did not mean what
  the caller asked.
- No query or path parameter holds a NUL byte (PostgreSQL refuses it in text: a 500).
- A JSON body comes as `application/json` (or `+json`): a form or text/plain body is a 415,
  rather than a puzzling "Input should be a valid dictionary".
"""

from __future__ import annotations

from collections import Counter

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tasklens.api.errors import ApiError


def _declared_names(dependant: Dependant) -> frozenset[str]:
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def strict_request(request: Request) -> None:
    """A router dependency (it runs before the body is validated)."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute) and route.body_field is not None:
        has_body = request.headers.get("content-length", "0") != "0" or (
            "transfer-encoding" in request.headers
        )
        if has_body and not _is_json(request.headers.get("content-type", "")):
            raise ApiError(415, "invalid Content-Type: send the body as application/json")
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if isinstance(value, str) and "\x00" in value:
            raise ApiError(400, f"invalid {name}: contains a NUL byte")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    declared = _declared_names(route.dependant)  # a handful of fields: cheaper than a cache
    counts = Counter(key for key, _ in request.query_params.multi_items())
    for name, count in counts.items():
        if name not in declared:
            accepted = ", ".join(sorted(declared)) or "none"
            raise ApiError(400, f"invalid query parameter {name!r}: unknown (accepted: {accepted})")
        if count > 1:
            raise ApiError(400, f"invalid {name}: given {count} times, at most once")
