"""The analysis tasks run on a real `tasklens worker`: progress reaches the live feed, the
result reaches the log, and failures say why. (The analyses API comes with issue 3.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from git_repo import make_repository
from github_replay import replay_server
from support import LiveEvents, Stack

from tasklens.broker import build_broker
from tasklens.recorder import recorder_for
from tasklens.settings import Settings


async def _kick(stack: Stack, task_name: str, **kwargs: Any) -> str:
    """Send a task as another process of the deployment would (its own client broker)."""
    settings = Settings(
        database_url=stack.env["TASKLENS_DATABASE_URL"], redis_url=stack.env["TASKLENS_REDIS_URL"]
    )
    broker = build_broker(settings, recorder_for(settings))
    await broker.startup()
    try:
        task = broker.find_task(task_name)
        assert task is not None
        return (await task.kiq(**kwargs)).task_id
    finally:
        await broker.shutdown()  # flushes the `pending` row


async def test_a_repository_analysis_reports_progress_and_its_result(
    distributed: Stack, tmp_path: Path
) -> None:
    repo = make_repository(tmp_path / "repos" / "project")
    distributed.env["TASKLENS_REPO_ROOTS"] = str(tmp_path / "repos")
    api = distributed.start_api()
    distributed.start_worker()

    async with LiveEvents(api.ws_url()) as live:
        task_id = await _kick(
            distributed, "analysis.repository", subject=str(repo), period="1_year"
        )
        await live.wait_status(task_id, "success", timeout=60)

    notes = [
        f["data"]["progress_message"]
        for f in live.frames
        if f.get("type") == "task_event" and f["data"]["progress_message"]
    ]
    assert notes[:5] == [
        "cloning",
        "reading history",
        "counting lines of code",
        "detecting technologies",
        "reading plan files",
    ]
    task = await asyncio.to_thread(api.wait_task, task_id, "success")
    assert task["params"] == {"subject": str(repo), "period": "1_year"}
    assert task["result"]["commit_count"] == 5
    assert task["result"]["plan_progress"]["percentage"] == 50.0


async def test_a_path_outside_the_roots_fails_with_the_reason(
    distributed: Stack, tmp_path: Path
) -> None:
    api = distributed.start_api()
    distributed.start_worker()
    task_id = await _kick(distributed, "analysis.repository", subject="/etc")
    task = await asyncio.to_thread(api.wait_task, task_id, "failed")
    assert task["attempts"][0]["error_message"] == (
        "InvalidSubject: subject: local paths must be under TASKLENS_REPO_ROOTS "
        "(none are configured)"
    )


async def test_an_unknown_github_user_fails_clearly_and_the_token_stays_secret(
    distributed: Stack,
) -> None:
    token = "ghp_workersecret0123456789"
    with replay_server("github_octo_dev.json") as github:
        distributed.env["TASKLENS_GITHUB_API_URL"] = github.base_url
        distributed.env["TASKLENS_GITHUB_TOKEN"] = token
        api = distributed.start_api()
        worker = distributed.start_worker()
        task_id = await _kick(distributed, "analysis.github_user", subject="ghost-nobody")
        task = await asyncio.to_thread(api.wait_task, task_id, "failed")

    assert task["attempts"][0]["error_message"] == (
        "UnknownUser: GitHub user 'ghost-nobody' does not exist"
    )
    assert github.requests[0]["headers"]["Authorization"] == f"Bearer {token}"
    assert token not in str(task) and token not in worker.log() + api.process.log()
