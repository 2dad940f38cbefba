"""Any TaskIQ app that adds TaskLensMiddleware shows up in TaskLens, retries included."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
from support import Stack, wait_for

HERE = Path(__file__).parent


@pytest.fixture
async def thirdparty(tmp_path: Path, postgres_url: str, redis_url: str) -> AsyncIterator[object]:
    os.environ["THIRDPARTY_REDIS_URL"] = redis_url
    os.environ["THIRDPARTY_DATABASE_URL"] = postgres_url
    log = (tmp_path / "thirdparty-worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "taskiq", "worker", "thirdparty_app:broker", "--workers", "1"],
        cwd=HERE,
        env={**os.environ, "PYTHONPATH": str(HERE)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    sys.path.insert(0, str(HERE))
    import thirdparty_app

    await thirdparty_app.broker.startup()
    try:
        yield thirdparty_app
    finally:
        await thirdparty_app.broker.shutdown()
        worker.terminate()
        worker.wait(20)
        sys.path.remove(str(HERE))


async def test_a_foreign_broker_is_logged_with_each_retry_attempt(
    thirdparty: object, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    app = thirdparty
    added = await app.add.kiq(2, 3)  # type: ignore[attr-defined]
    charged = await app.charge.kiq("INV-7", card_token="tok_live_abc")  # type: ignore[attr-defined]

    # TaskLens itself, pointed at the same database, shows those tasks. The checks block,
    # so they run in a thread: this event loop must stay free to flush the client's log.
    def look_in_tasklens() -> None:
        stack = Stack(
            tmp_path,
            {
                "TASKLENS_DATABASE_URL": postgres_url,
                "TASKLENS_REDIS_URL": redis_url,
                "TASKLENS_API_TOKENS": "ops:operator:operator-token-0123456789abcdef",
            },
        )
        try:
            api = stack.start_api()
            add_task = api.wait_task(added.task_id, "success")
            assert add_task["task_name"] == "billing.add"
            assert add_task["result"] == 5
            assert add_task["params"] == {"_args": [2, 3]}
            assert add_task["queue"] == "thirdparty"

            wait_for(
                lambda: (
                    len(api.task(charged.task_id).get("attempts", [])) == 3
                    and api.task(charged.task_id)["status"] == "success"
                ),
                timeout=30,
                what="the third attempt of billing.charge to succeed",
            )
            charge = api.task(charged.task_id)
            assert [a["status"] for a in charge["attempts"]] == ["failed", "failed", "success"]
            assert charge["attempts"][0]["error_message"] == (
                "ConnectionError: payment gateway timeout (attempt 1)"
            )
            assert "raise ConnectionError" in charge["attempts"][1]["error_traceback"]
            assert charge["params"] == {"_args": ["INV-7"], "card_token": "***"}
            assert charge["result"] == "charged INV-7"
        finally:
            stack.stop_all()

    await asyncio.to_thread(look_in_tasklens)


async def test_a_foreign_task_longer_than_the_tasklens_timeout_runs_on_while_its_worker_beats(
    thirdparty: object, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    """TaskLens's reaper takes a `running` row older than its own longest task (here 1 s +
    0.5 s + 10 s) for a lost one; but the foreign worker's heartbeat lists this task, so the
    row stays `running` for all of its 25 s and ends `success`, never `failed` on the way;
    also when Redis loses the heartbeats midway (FLUSHDB), until the worker beats again."""
    sent = await thirdparty.reconcile.kiq(25)  # type: ignore[attr-defined]

    def watch_in_tasklens() -> list[str]:
        stack = Stack(
            tmp_path,
            {
                "TASKLENS_DATABASE_URL": postgres_url,
                "TASKLENS_REDIS_URL": redis_url,
                "TASKLENS_API_TOKENS": "ops:operator:operator-token-0123456789abcdef",
                "TASKLENS_TASK_TIMEOUT_SECONDS": "1",
            },
        )
        seen: list[str] = []
        running_since, flushed = 0.0, False
        try:
            api = stack.start_api()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (not seen or seen[-1] != "success"):
                seen.append(api.task(sent.task_id).get("status", "none"))
                if seen[-1] == "running" and not running_since:
                    running_since = time.monotonic()
                if running_since and not flushed and time.monotonic() - running_since > 13:
                    with redis.Redis.from_url(redis_url) as client:
                        client.flushdb()  # past the age limit: only the heartbeat shields it
                    flushed = True
                time.sleep(0.5)
            assert flushed
            [attempt] = api.task(sent.task_id)["attempts"]
            assert attempt["error_message"] is None
            assert attempt["duration_ms"] >= 25_000
        finally:
            stack.stop_all()
        return seen

    seen = await asyncio.to_thread(watch_in_tasklens)
    assert seen[-1] == "success"
    assert "failed" not in seen, seen
    assert seen.count("running") * 0.5 > 12  # watched while it was older than the limit
