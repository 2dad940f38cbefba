"""Every endpoint but the health probes needs a token; operator actions need an operator."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import re
import sqlite3
import subprocess
from collections.abc import Iterator

import httpx
import pytest
import websockets
from conftest import embedded_stack
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Mount, Route
from support import OPERATOR_TOKEN, TASKLENS, VIEWER_TOKEN, Api, Stack

import tasklens.api.routes
from tasklens.api.app import API_PREFIX, create_app
from tasklens.settings import Settings


def _routes() -> list[tuple[str, str]]:
    """Every operation in the app's route table (FastAPI keeps included routers nested, so
    the OpenAPI document is the public flat view of it). Not listed there, and public on
    purpose: the SPA's static shell, /api/v1/docs and /api/v1/openapi.json."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "some-id", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    ]


ROUTES = _routes()
# Every route that changes something is an operator's: all of them are POSTs.
OPERATOR_ONLY = sorted((method, path) for method, path in ROUTES if method != "GET")


def _module_routes() -> tuple[list[tuple[str, str]], list[str]]:
    """Every route of every module in tasklens.api.routes, found by walking the package, so a
    new module or route cannot be missed: (HTTP method, full path) pairs and WebSocket paths."""
    http: list[tuple[str, str]] = []
    sockets: list[str] = []
    for info in pkgutil.iter_modules(tasklens.api.routes.__path__):
        module = importlib.import_module(f"tasklens.api.routes.{info.name}")
        prefix = "" if info.name in ("health", "metrics") else API_PREFIX
        for route in module.router.routes:
            if isinstance(route, APIWebSocketRoute):
                sockets.append(prefix + route.path)
            else:
                assert isinstance(route, APIRoute), route
                http.extend((m, prefix + route.path) for m in route.methods or ())
    return http, sockets


MODULE_ROUTES, SOCKETS = _module_routes()
# Public on purpose, and serving no data: the API's description, Swagger UI, and the SPA's
# static shell (with its assets when built). Each is checked below.
PUBLIC = {"/api/v1/openapi.json", "/api/v1/docs", "/docs/oauth2-redirect", "/{path:not_api}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = embedded_stack(tmp_path_factory.mktemp("auth"))
    # Dozens of wrong tokens on purpose, from one address: test_auth_throttle.py tests the limit.
    stack.env["TASKLENS_AUTH_FAILURE_LIMIT"] = "100000/60"
    try:
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def api(stack: Stack) -> Api:
    return stack.start_api()


def test_the_route_table_is_walked() -> None:
    assert ("GET", "/health") in ROUTES
    assert ("GET", "/api/v1/monitoring/history") in ROUTES
    assert len(ROUTES) >= 7


def test_every_route_is_either_checked_here_or_public_on_purpose() -> None:
    """The HTTP routes of the route modules are exactly the OpenAPI operations walked by the
    401/403 tests; the sockets are checked for 1008; the app's own routes are the PUBLIC ones."""
    templated = [(m, re.sub(r"\{[^}:]+(:[^}]+)?\}", "some-id", p)) for m, p in MODULE_ROUTES]
    assert sorted(templated) == sorted(ROUTES)
    assert SOCKETS == ["/api/v1/ws"]
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    top_level = {r.path for r in app.routes if isinstance(r, Route | APIRoute | Mount)}
    assert top_level - {"/assets"} == PUBLIC


def test_the_public_routes_serve_no_data(api: Api) -> None:
    spec = httpx.get(api.base_url + "/api/v1/openapi.json")
    assert spec.status_code == 200 and "paths" in spec.json()
    for path in ("/api/v1/docs", "/docs/oauth2-redirect", "/", "/monitoring/history"):
        page = httpx.get(api.base_url + path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "task_id" not in page.text, path


PUBLIC_PROBES = {"/health", "/health/live", "/health/ready"}  # what a load balancer asks


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_token_is_a_401_except_health(api: Api, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-real-token-at-all"}):
        response = httpx.request(method, api.base_url + path, headers=headers, json={})
        if path in PUBLIC_PROBES:
            assert response.status_code == 200
        else:
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"].startswith("missing or invalid token")


def test_the_operator_routes_are_the_ones_that_change_things() -> None:
    assert ("POST", "/api/v1/demo") in OPERATOR_ONLY
    assert ("POST", "/api/v1/analyses") in OPERATOR_ONLY
    assert ("POST", "/api/v1/tasks/some-id/retry") in OPERATOR_ONLY


@pytest.mark.parametrize(("method", "path"), OPERATOR_ONLY)
def test_a_viewer_gets_403_on_operator_routes(api: Api, method: str, path: str) -> None:
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    response = httpx.request(method, api.base_url + path, headers=headers, json={"count": 1})
    assert response.status_code == 403
    assert "viewer" in response.json()["error"]


def test_an_operator_passes_where_a_viewer_is_refused(api: Api) -> None:
    allowed = httpx.post(
        api.base_url + "/api/v1/demo",
        json={"count": 1},
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
    )
    assert allowed.status_code == 202


def test_whoami_tells_the_role(api: Api) -> None:
    with api.client(VIEWER_TOKEN) as client:
        assert client.get("/api/v1/me").json() == {"name": "watcher", "role": "viewer"}


async def test_the_websocket_closes_without_a_token(api: Api) -> None:
    async with websockets.connect(api.ws_url(token=None)) as socket_:
        await socket_.send("not json")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket_.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.parametrize(
    "first_message",
    [
        None,  # nothing within AUTH_TIMEOUT_SECONDS (5 s)
        json.dumps({"token": "not-a-real-token-at-all"}),
        json.dumps({"token": OPERATOR_TOKEN[:-1]}),
        json.dumps({"token": ["a", "list"]}),
        json.dumps(["not", "an", "object"]),
        "x" * 60_000,  # not JSON, within the 64 KiB frame limit (past it: 1009)
    ],
)
async def test_the_websocket_closes_on_a_bad_first_message(
    api: Api, first_message: str | None
) -> None:
    async with websockets.connect(api.ws_url(token=None)) as socket_:
        if first_message is not None:
            await socket_.send(first_message)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket_.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.parametrize("token", ["not-a-real-token-at-all", OPERATOR_TOKEN + "x", ""])
async def test_the_websocket_closes_on_a_bad_query_token(api: Api, token: str) -> None:
    url = api.ws_url(token=None) + f"?token={token}"
    async with websockets.connect(url) as socket_:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket_.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.parametrize(
    ("token", "role"), [(VIEWER_TOKEN, "viewer"), (OPERATOR_TOKEN, "operator")]
)
async def test_the_websocket_greets_a_valid_first_message_token(
    api: Api, token: str, role: str
) -> None:
    async with websockets.connect(api.ws_url(token=None)) as socket_:
        await socket_.send(json.dumps({"token": token}))
        hello = json.loads(await socket_.recv())
    assert hello == {"type": "hello", "name": hello["name"], "role": role}


@pytest.mark.parametrize(
    "authorization",
    [
        f"Basic {OPERATOR_TOKEN}",
        f"Bearer {OPERATOR_TOKEN[:-1]}",
        f"Bearer {OPERATOR_TOKEN}x",
        f"Bearer {OPERATOR_TOKEN.upper()}",
        "Bearer",
        "Bearer x",
        f"{OPERATOR_TOKEN}",
        f"Bearer {hashlib.sha256(OPERATOR_TOKEN.encode()).hexdigest()}",  # the digest is no key
    ],
)
def test_near_miss_credentials_are_a_401(api: Api, authorization: str) -> None:
    response = httpx.get(api.base_url + "/api/v1/me", headers={"Authorization": authorization})
    assert response.status_code == 401, authorization
    assert response.json()["error"].startswith("missing or invalid token")


def test_a_minted_token_is_stored_only_as_its_digest(stack: Stack, api: Api) -> None:
    minted = subprocess.run(
        [TASKLENS, "token", "--name", "auditor", "--role", "viewer"],
        cwd=stack.workdir,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        check=True,
    )
    token = minted.stdout.strip().splitlines()[-1]
    with api.client(token) as client:
        assert client.get("/api/v1/me").json() == {"name": "auditor", "role": "viewer"}
    database = stack.env["TASKLENS_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT * FROM tasklens_api_tokens WHERE name = 'auditor'").fetchall()
    assert len(rows) == 1
    assert hashlib.sha256(token.encode()).hexdigest() in rows[0]
    assert not any(token in str(value) for value in rows[0])
