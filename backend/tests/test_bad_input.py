"""Malformed requests get a 4xx `{"error"}` naming what is wrong, never a 5xx or an answer
to a question the caller did not ask (what schemathesis found, pinned down)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import embedded_stack
from support import Api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    stack = embedded_stack(tmp_path_factory.mktemp("bad-input"))
    try:
        yield stack.start_api()
    finally:
        stack.stop_all()


@pytest.fixture
def client(api: Api) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    return str(body["error"])


def test_a_wrong_method_on_an_api_route_is_405_not_the_dashboard(client: httpx.Client) -> None:
    response = client.delete("/api/v1/analyses")
    assert response.headers["allow"] == "GET, POST"
    _error(response, 405)
    _error(client.delete("/api/v1/monitoring/history"), 405)
    _error(client.post("/health"), 405)


def test_an_unknown_api_path_is_a_json_404(client: httpx.Client) -> None:
    _error(client.get("/api/v1/nope"), 404)
    _error(client.get("/api/v2/monitoring/history"), 404)


def test_the_dashboard_still_answers_its_own_routes(api: Api) -> None:
    for path in ("/", "/monitoring", "/monitoring?token=abc", "/health-report", "/apis"):
        response = httpx.get(api.base_url + path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html"), path


def test_a_task_page_link_reloads_as_the_dashboard(api: Api) -> None:
    """`/tasks/<id>` is a shareable address: opened directly it is the SPA's shell, which
    then routes to the task page, not a 404."""
    shell = httpx.get(api.base_url + "/").text
    for path in ("/tasks/0123456789abcdef0123456789abcdef", "/tasks/a-b_c.d?token=abc"):
        response = httpx.get(api.base_url + path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html"), path
        assert response.text == shell, path


def test_an_unknown_query_parameter_is_named(client: httpx.Client) -> None:
    error = _error(client.get("/api/v1/monitoring/history", params={"pagesize": 10}), 400)
    assert "'pagesize'" in error and "page_size" in error
    _error(client.get("/api/v1/me", params={"x": ""}), 400)


def test_a_repeated_query_parameter_is_refused(client: httpx.Client) -> None:
    response = client.get("/api/v1/monitoring/history?status=failed&status=success")
    assert _error(response, 400) == "invalid status: given 2 times, at most once"


@pytest.mark.parametrize("value", ["0.5", "1700000000", "2024-05-01", "yesterday"])
def test_dates_must_be_iso_date_times(client: httpx.Client, value: str) -> None:
    response = client.get("/api/v1/monitoring/history", params={"start_date": value})
    assert _error(response, 400).startswith("invalid start_date: ")


def test_an_iso_date_time_is_accepted(client: httpx.Client) -> None:
    for value in ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00+02:00", "2024-05-01 12:00"):
        response = client.get("/api/v1/monitoring/history", params={"start_date": value})
        assert response.status_code == 200, (value, response.text)


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
        {"Content-Type": "application/xml"},
        {},  # no Content-Type at all
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/demo", "/api/v1/analyses", "/api/v1/analyses/sync"])
def test_a_body_that_is_not_json_is_a_415(
    client: httpx.Client, path: str, headers: dict[str, str]
) -> None:
    response = client.post(path, content=b'{"count": 1}', headers=headers)
    assert _error(response, 415) == "invalid Content-Type: send the body as application/json"


def test_json_media_types_with_parameters_or_suffixes_are_json(client: httpx.Client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = client.post(
            "/api/v1/demo",
            content=b'{"count": 1, "task": "demo.noop"}',
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 202, (content_type, response.text)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "invalid body: a JSON object is required"),
        (b'{"count": 1,', "invalid body: not valid JSON"),
        (b'{"count": "\x80"}', "invalid body: not parsable as JSON"),
        (b"[1, 2]", "invalid body: Input should be a valid dictionary"),
        (b"null", "invalid body: Input should be a valid dictionary"),
        (b'{"count": NaN}', "invalid count: "),
        (b'{"count": "many"}', "invalid count: "),
        (b'{"count": 1e400}', "invalid count: "),
    ],
)
def test_a_malformed_json_body_is_a_400_naming_the_body(
    client: httpx.Client, body: bytes, error: str
) -> None:
    response = client.post(
        "/api/v1/demo", content=body, headers={"Content-Type": "application/json"}
    )
    assert _error(response, 400).startswith(error)


def test_garbage_query_strings_are_a_400(client: httpx.Client) -> None:
    for query in ("page=%ZZ", "page=1&page=2", "=&&=x", "page=%00", "page=1e3", "page=-1"):
        response = client.get(f"/api/v1/monitoring/history?{query}")
        assert _error(response, 400).startswith("invalid "), query
