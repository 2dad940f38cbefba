"""The GitHub user analysis against a local server replaying recorded API responses:
pagination, a rate-limit reset, an unknown user, transient errors, and the token."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from github_replay import replay_server

from tasklens.analyses.github import (
    GitHubClient,
    RateLimited,
    TransientGitHubError,
    UnknownUser,
    analyse,
    validate_login,
)
from tasklens.analyses.periods import Period

TOKEN = "ghp_replaysecret0123456789"


async def test_a_user_with_paginated_pull_requests_after_a_rate_limit() -> None:
    with replay_server("github_octo_dev.json") as github:
        async with GitHubClient(github.base_url, TOKEN) as client:
            with pytest.raises(RateLimited) as limited:
                await analyse(client, "octo-dev", Period.ONE_MONTH, lambda *_: None)
            assert limited.value.retry_at == datetime(2030, 1, 1, tzinfo=UTC)

            result = await analyse(client, "octo-dev", Period.ONE_MONTH, lambda *_: None)

    assert result["profile"]["name"] == "Octo Dev"
    assert result["pull_requests"] == {"total": 5, "merged": 2, "open": 2, "closed_unmerged": 1}
    assert [(r["full_name"], r["stars"], r["pull_requests"]) for r in result["repositories"]] == [
        ("taskiq-python/taskiq", 1500, 3),
        ("taskiq-python/taskiq-redis", 150, 1),
        ("fastapi/fastapi", 80000, 1),
    ]
    assert result["languages"] == {"Python": 5}
    searches = [r for r in github.requests if r["path"].startswith("/search/issues")]
    assert len(searches) == 3  # rate-limited, page 1, then the Link header's page 2
    assert "created%3A%3E%3D" in searches[1]["path"]  # the period became created:>=date
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in github.requests)
    assert TOKEN not in str(result)


async def test_an_unknown_user_is_a_clear_permanent_failure() -> None:
    with replay_server("github_octo_dev.json") as github:
        async with GitHubClient(github.base_url) as client:
            with pytest.raises(UnknownUser, match="GitHub user 'ghost-nobody' does not exist"):
                await analyse(client, "ghost-nobody", Period.ALL, lambda *_: None)
    assert "Authorization" not in github.requests[0]["headers"]


async def test_server_errors_are_transient_and_retry_after_reschedules() -> None:
    with replay_server("github_octo_dev.json") as github:
        async with GitHubClient(github.base_url) as client:
            with pytest.raises(TransientGitHubError, match="502"):
                await analyse(client, "flaky-api", Period.ALL, lambda *_: None)
            before = datetime.now(UTC)
            with pytest.raises(RateLimited) as limited:
                await analyse(client, "flaky-api", Period.ALL, lambda *_: None)
    waited = (limited.value.retry_at - before).total_seconds()
    assert 29 <= waited <= 31


async def test_an_unreachable_github_is_transient() -> None:
    async with GitHubClient("http://127.0.0.1:9") as client:
        with pytest.raises(TransientGitHubError, match="unreachable"):
            await analyse(client, "octo-dev", Period.ALL, lambda *_: None)


@pytest.mark.parametrize("login", ["", "-leading", "a" * 40, "has space", "x/../y", "über"])
def test_malformed_logins_are_refused(login: str) -> None:
    with pytest.raises(ValueError, match="subject: a GitHub login"):
        validate_login(login)
