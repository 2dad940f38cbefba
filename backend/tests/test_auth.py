"""Every endpoint but /health needs a token; operator actions need an operator."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from conftest import embedded_stack
from support import OPERATOR_TOKEN, VIEWER_TOKEN, Api

from tasklens.api.app import create_app
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


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    stack = embedded_stack(tmp_path_factory.mktemp("auth"))
    try:
        yield stack.start_api()
    finally:
        stack.stop_all()


def test_the_route_table_is_walked() -> None:
    assert ("GET", "/health") in ROUTES
    assert ("GET", "/api/v1/monitoring/history") in ROUTES
    assert len(ROUTES) >= 7


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_token_is_a_401_except_health(api: Api, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-real-token-at-all"}):
        response = httpx.request(method, api.base_url + path, headers=headers, json={})
        if path == "/health":
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
    import websockets

    async with websockets.connect(api.ws_url(token=None)) as socket_:
        await socket_.send("not json")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await socket_.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
