"""`/health/live` (the process answers) and `/health/ready` (the database and Redis answer),
against a real `tasklens serve` whose Redis (a private server) or database goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from conftest import PG_ADMIN_URL, TEST_DB, distributed_stack
from private_services import PrivateRedis
from support import OPERATOR_TOKEN, Api, Stack, wait_for


def _start_api(stack: Stack) -> Api:
    api = stack.launch_api()
    api.wait_healthy(timeout=120)  # a shared 2-core machine may take long to import it all
    return api


def _probe(api: Api, path: str) -> tuple[int, Any]:
    response = httpx.get(api.base_url + path, timeout=30)  # no token: probes need none
    return response.status_code, response.json()


def _reveals_nothing(body: Any, *secrets: str) -> None:
    text = str(body)
    for secret in ("127.0.0.1", "localhost", "redis://", "postgresql", *secrets):
        assert secret not in text


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def test_embedded_server_is_live_and_ready_without_redis(embedded: Stack) -> None:
    api = _start_api(embedded)
    assert _probe(api, "/health/live") == (200, {"status": "ok"})
    assert _probe(api, "/health/ready") == (
        200,
        {"status": "ready", "checks": {"database": "ok", "redis": "not_used"}},
    )
    status, body = _probe(api, "/health/ready?verbose=1")  # probes take no parameters
    assert status == 400 and "verbose" in body["error"]


def test_ready_is_503_naming_redis_when_redis_is_down(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    stack = distributed_stack(tmp_path)
    stack.env["TASKLENS_REDIS_URL"] = private_redis.url
    try:
        api = _start_api(stack)
        assert _probe(api, "/health/ready") == (
            200,
            {"status": "ready", "checks": {"database": "ok", "redis": "ok"}},
        )
        private_redis.stop()
        status, body = _probe(api, "/health/ready")
        assert status == 503
        assert body == {
            "error": "not ready: redis down",
            "checks": {"database": "ok", "redis": "down"},
        }
        _reveals_nothing(body, str(private_redis.port))
        assert _probe(api, "/health/live") == (200, {"status": "ok"})
    finally:
        stack.stop_all()
    # TaskLens's own warning says why, in the log (not in the answer)
    assert "WARNING tasklens.runtime: health: redis unreachable" in api.process.log()


async def _refuse_connections(allowed: bool) -> None:
    """The test database stops (or starts again) taking connections, and the server's
    open ones are cut: for this server the database is gone; other databases are not."""
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'ALTER DATABASE "{TEST_DB}" WITH ALLOW_CONNECTIONS {allowed}')
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                TEST_DB,
            )
    finally:
        await conn.close()


def test_ready_is_503_naming_the_database_when_it_is_down(tmp_path: Path) -> None:
    stack = distributed_stack(tmp_path)
    try:
        api = _start_api(stack)
        assert _probe(api, "/health/ready")[0] == 200
        asyncio.run(_refuse_connections(False))
        try:
            status, body = _probe(api, "/health/ready")
            assert _probe(api, "/health/live") == (200, {"status": "ok"})
        finally:
            asyncio.run(_refuse_connections(True))
        assert status == 503
        assert body == {
            "error": "not ready: database down",
            "checks": {"database": "down", "redis": "ok"},
        }
        _reveals_nothing(body, TEST_DB, OPERATOR_TOKEN)
        wait_for(  # back once the database takes connections again
            lambda: _probe(api, "/health/ready")[0] == 200, timeout=30, what="ready again"
        )
    finally:
        stack.stop_all()
