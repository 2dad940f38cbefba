"""Failed token attempts are throttled per client address, across HTTP and the WebSocket and
across API processes: past 10 a minute (the default) every request from that address needing a
token gets 429 with Retry-After, a valid token included, until the window has room again."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import websockets
from private_services import PrivateRedis
from support import API_TOKENS, OPERATOR_TOKEN, TASKLENS, Api, Stack

WRONG = "wrong-token-0123456789abcdef"
LIMIT_MESSAGE = "too many failed token attempts from this address: retry in "


def _me(api: Api, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(api.base_url + "/api/v1/me", headers=headers, timeout=30)


async def _socket_close_code(url: str, first_message: str | None = None) -> tuple[int, str]:
    async with websockets.connect(url, open_timeout=30) as socket_:
        if first_message is not None:
            await socket_.send(first_message)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket_.recv(), 30)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def _assert_throttled(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"].startswith(LIMIT_MESSAGE)
    assert 1 <= int(response.headers["Retry-After"]) <= window


def _mint(stack: Stack, name: str) -> str:
    minted = subprocess.run(
        [TASKLENS, "token", "--name", name, "--role", "viewer"],
        cwd=stack.workdir,
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        check=True,
    )
    return minted.stdout.strip().splitlines()[-1]


async def test_ten_failures_a_minute_then_429_for_http_and_the_websocket(embedded: Stack) -> None:
    assert "TASKLENS_AUTH_FAILURE_LIMIT" not in {**os.environ, **embedded.env}  # the default
    api = embedded.start_api()
    stored = _mint(embedded, "auditor")
    # A stored token is looked up in the table after counting as a failure: then taken back.
    assert _me(api, stored).json()["name"] == "auditor"

    # Ten failures: six over HTTP (X-Forwarded-For is not believed by default), four over the
    # WebSocket (two as ?token=, two as a first message).
    for i in range(6):
        assert _me(api, WRONG, **{"X-Forwarded-For": f"203.0.113.{i}"}).status_code == 401
    for _ in range(2):
        assert (await _socket_close_code(api.ws_url(WRONG)))[0] == 1008
    for _ in range(2):
        message = json.dumps({"token": WRONG})
        assert (await _socket_close_code(api.ws_url(None), message))[0] == 1008
    assert _me(api, None).status_code == 401  # no token is no guess: not counted

    # The eleventh: 429, and a valid token from this address too, over HTTP and the socket.
    _assert_throttled(_me(api, WRONG, **{"X-Forwarded-For": "198.51.100.7"}), 60)
    _assert_throttled(_me(api, OPERATOR_TOKEN), 60)
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(api.ws_url(OPERATOR_TOKEN), open_timeout=30)
    assert refused.value.response.status_code == 429
    assert 1 <= int(refused.value.response.headers["Retry-After"]) <= 60
    assert json.loads(refused.value.response.body)["error"].startswith(LIMIT_MESSAGE)
    code, reason = await _socket_close_code(api.ws_url(None), json.dumps({"token": OPERATOR_TOKEN}))
    assert code == 1008 and reason.startswith(LIMIT_MESSAGE)
    assert httpx.get(api.base_url + "/health", timeout=30).status_code == 200


def test_the_window_passes_and_a_valid_token_works_again(embedded: Stack) -> None:
    embedded.env["TASKLENS_AUTH_FAILURE_LIMIT"] = "3/2"
    api = embedded.start_api()
    assert [_me(api, WRONG).status_code for _ in range(3)] == [401] * 3
    _assert_throttled(_me(api, OPERATOR_TOKEN), 2)
    deadline = time.monotonic() + 30
    while (response := _me(api, OPERATOR_TOKEN)).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert response.json()["name"] == "ops"


async def test_the_count_is_shared_by_api_processes_and_a_burst_cannot_outrun_it(
    distributed: Stack,
) -> None:
    api_a, api_b = distributed.start_api("api-a"), distributed.start_api("api-b")
    async with httpx.AsyncClient(timeout=60) as client:

        async def guess(api: Api) -> int:
            headers = {"Authorization": f"Bearer {WRONG}"}
            return (await client.get(api.base_url + "/api/v1/me", headers=headers)).status_code

        # 60 wrong tokens at once, half to each process: exactly ten are even checked.
        statuses = await asyncio.gather(*(guess(api) for api in [api_a, api_b] * 30))
    assert sorted(statuses) == [401] * 10 + [429] * 50
    _assert_throttled(_me(api_a, OPERATOR_TOKEN), 60)
    _assert_throttled(_me(api_b, OPERATOR_TOKEN), 60)


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(embedded: Stack) -> None:
    embedded.env["TASKLENS_AUTH_FAILURE_LIMIT"] = "2/60"
    embedded.env["TASKLENS_TRUSTED_PROXIES"] = "127.0.0.1"  # the test is the proxy here
    api = embedded.start_api()
    first = {"X-Forwarded-For": "203.0.113.1"}
    assert [_me(api, WRONG, **first).status_code for _ in range(2)] == [401, 401]
    _assert_throttled(_me(api, WRONG, **first), 60)
    assert _me(api, OPERATOR_TOKEN, **{"X-Forwarded-For": "203.0.113.2"}).status_code == 200


def test_with_redis_down_each_process_counts_on_its_own(tmp_path: Path, postgres_url: str) -> None:
    """Authentication never depends on Redis: the count falls back to the process's memory."""
    redis_server = PrivateRedis(tmp_path).start()
    stack = Stack(
        tmp_path,
        {
            "TASKLENS_DATABASE_URL": postgres_url,
            "TASKLENS_REDIS_URL": redis_server.url,
            "TASKLENS_API_TOKENS": API_TOKENS,
        },
    )
    try:
        api = stack.start_api()
        assert _me(api, WRONG).status_code == 401  # counted in Redis
        redis_server.stop()
        assert _me(api, OPERATOR_TOKEN).json()["name"] == "ops"
        assert [_me(api, WRONG).status_code for _ in range(10)] == [401] * 10
        _assert_throttled(_me(api, WRONG), 60)
        _assert_throttled(_me(api, OPERATOR_TOKEN), 60)
        assert "auth throttle: Redis unreachable" in api.process.log()
    finally:
        stack.stop_all()
        redis_server.stop()
