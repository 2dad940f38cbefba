"""The messages of the live WebSocket (`WS /api/v1/ws`), as part of the API contract.

OpenAPI describes no WebSocket frames, so `add_to_openapi` puts these models into the
document's components and lists them under `x-websocket`: the dashboard's types for the
socket are generated from specs/openapi.json like every REST type, not written by hand.
The hub sends task events as JSON built once for every client (live.py, lifecycle.py), not
through these models; tests/test_contract.py checks that what a real server sends validates
against them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import models_json_schema

from tasklens.tokens import Role
from tasklens.tracking.models import TaskStatus

WS_PATH = "/api/v1/ws"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


MAX_BACKFILL = 500


class LiveAuth(_Message):
    """The client's first message: its token (never in the URL, so no access log holds it)
    and, when it reconnects, the id of the last event it got. A client without one may ask
    for a `backfill`: the newest retained events (at most 500), sent before the live ones."""

    token: str
    since: str | None = None
    backfill: Annotated[int, Field(ge=0, le=MAX_BACKFILL)] | None = None


class LivePing(_Message):
    type: Literal["ping"]


class LiveHello(_Message):
    """First frame after a good token: who the server took the client for."""

    type: Literal["hello"]
    name: str
    role: Role


class LiveTaskEventData(_Message):
    task_id: str
    attempt: int
    duration_ms: float | None
    error_message: str | None
    params: Any
    progress: float | None
    progress_message: str | None
    queue: str | None
    worker: str | None


class LiveTaskEvent(_Message):
    """One lifecycle change. `id` grows with every event; a client reconnects with the last
    one as `since` to get what it missed."""

    type: Literal["task_event"]
    id: str
    task_name: str
    status: TaskStatus
    timestamp: datetime
    data: LiveTaskEventData


class LiveResync(_Message):
    """The `since` id is no longer retained (or garbled): refetch from the REST log."""

    type: Literal["resync"]


class LiveEventsDropped(_Message):
    """This client read too slowly and lost its `count` oldest events: refetch."""

    type: Literal["events_dropped"]
    count: int


class LivePong(_Message):
    type: Literal["pong"]


class LiveServerMessage(
    RootModel[
        Annotated[
            LiveHello | LiveTaskEvent | LiveResync | LiveEventsDropped | LivePong,
            Field(discriminator="type"),
        ]
    ]
):
    """Any frame the server sends."""


class LiveClientMessage(RootModel[LiveAuth | LivePing]):
    """Any message a client sends: the auth message first, then pings."""


MODELS: tuple[type[BaseModel], ...] = (LiveServerMessage, LiveClientMessage)


def add_to_openapi(document: dict[str, Any]) -> None:
    """Adds the socket's message models to `document`'s components and describes the socket
    under `x-websocket`. A model whose name a REST schema already uses must be the same."""
    _, top = models_json_schema(
        [(model, "validation") for model in MODELS],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in top["$defs"].items():
        if name in schemas and schemas[name] != schema:
            raise ValueError(f"the WebSocket model {name} clashes with a REST schema")
        schemas[name] = schema
    document["x-websocket"] = {
        WS_PATH: {
            "description": "Every lifecycle event, live (see specs/architecture.md).",
            "client": {"$ref": "#/components/schemas/LiveClientMessage"},
            "server": {"$ref": "#/components/schemas/LiveServerMessage"},
        }
    }
