"""The GitHub user analysis against a local server replaying recorded API responses:
pagination, a rate-limit reset, an unknown user, transient errors, and the token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from github_replay import replay_server

from tasklens.analyses.github import (
    GitHubClient,
    GitHubError,
    RateLimited,
    TransientGitHubError,
    UnknownUser,
    analyse,
    repository_name,
    validate_login,
)
from tasklens.analyses.periods import Period
from tasklens.analyses.reach import AllowedHosts

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


@pytest.mark.parametrize(
    "login", ["", "-leading", "a" * 40, "has space", "x/../y", "über", "octocat\n"]
)
def test_malformed_logins_are_refused(login: str) -> None:
    with pytest.raises(ValueError, match="subject: a GitHub login"):
        validate_login(login)


def test_a_name_with_a_trailing_newline_is_no_name() -> None:
    """`$` matches before a final newline: `octocat\\n` passed as a login (a new subject, and
    a request path and search query of its own), `o/n\\n` as a repository name, and
    `localhost\\n` as a host name."""
    assert repository_name("https://api.github.com/repos/o/n%0A") is None
    with pytest.raises(ValueError, match="neither a host name"):
        AllowedHosts.parse(["git.internal\n"])


def _user(login: str) -> dict[str, Any]:
    return {"path": f"/users/{login}", "responses": [{"status": 200, "body": {"login": login}}]}


def _search(login: str, items: list[dict[str, Any]], link: str | None = None) -> dict[str, Any]:
    headers = {"Link": f'<{link}>; rel="next"'} if link else {}
    return {
        "path": "/search/issues",
        "query_contains": {"q": f"author:{login}"},
        "responses": [{"status": 200, "headers": headers, "body": {"items": items}}],
    }


def _pr(repository_url: str) -> dict[str, Any]:
    return {"state": "open", "repository_url": repository_url, "pull_request": {}}


def _repos(*full_names: str) -> list[dict[str, Any]]:
    return [
        {"path": f"/repos/{name}", "responses": [{"status": 200, "body": {"language": "Go"}}]}
        for name in full_names
    ]


async def test_the_token_never_follows_a_next_link_to_another_origin() -> None:
    with replay_server([_user("elsewhere")]) as other:
        routes = [_user("lured"), _search("lured", [], link=f"{other.base_url}/search/issues")]
        with replay_server(routes) as github:
            async with GitHubClient(github.base_url, TOKEN) as client:
                with pytest.raises(GitHubError, match="outside the GitHub API"):
                    await analyse(client, "lured", Period.ALL, lambda *_: None)
    assert other.requests == []
    assert [r["path"].split("?")[0] for r in github.requests] == ["/users/lured", "/search/issues"]


async def test_a_next_link_to_another_path_of_the_api_is_not_followed() -> None:
    routes = [
        _user("steered"),
        _search("steered", [], link="{base}/user/keys?page=2"),
        {"path": "/user/keys", "responses": [{"status": 200, "body": {"items": []}}]},
    ]
    with replay_server(routes) as github:
        async with GitHubClient(github.base_url, TOKEN) as client:
            with pytest.raises(GitHubError, match="outside"):
                await analyse(client, "steered", Period.ALL, lambda *_: None)
    assert all(not r["path"].startswith("/user/keys") for r in github.requests)


async def test_a_redirect_to_another_origin_is_not_followed() -> None:
    with replay_server([_user("moved")]) as other:
        moved = {"status": 301, "headers": {"Location": f"{other.base_url}/users/moved"}}
        with replay_server([{"path": "/users/moved", "responses": [moved]}]) as github:
            async with GitHubClient(github.base_url, TOKEN) as client:
                with pytest.raises(GitHubError, match="outside the GitHub API"):
                    await analyse(client, "moved", Period.ALL, lambda *_: None)
    assert other.requests == []


async def test_api_data_cannot_steer_requests_to_other_paths() -> None:
    items = [
        _pr("{base}/repos/octo/good"),
        _pr("https://api.github.com/repos/octo/good"),  # another spelling of the same origin
        _pr("{base}/repos/octo/good/collaborators"),
        _pr("{base}/repos/octo/good?per_page=1&x=/repos/a/b"),
        _pr("{base}/repos/../../user/keys"),
        _pr("{base}/repos/octo/.."),
        _pr("{base}/repos/-octo/x"),
        _pr("{base}/repos/octo/bad#/repos/a/b"),
        _pr("{base}/repos/octo/other.js"),
    ]
    routes = [_user("steer"), _search("steer", items), *_repos("octo/good", "octo/other.js")]
    with replay_server(routes) as github:
        async with GitHubClient(github.base_url, TOKEN) as client:
            result = await analyse(client, "steer", Period.ALL, lambda *_: None)
    assert [(r["full_name"], r["pull_requests"]) for r in result["repositories"]] == [
        ("octo/good", 2),
        ("octo/other.js", 1),
    ]
    asked = [r["path"] for r in github.requests if r["path"].startswith("/repos/")]
    assert asked == ["/repos/octo/good", "/repos/octo/other.js"]
    assert len(github.requests) == 4  # the profile, one search page, two repositories


async def test_links_from_api_data_are_https_only() -> None:
    """The dashboard renders these as links: a `javascript:` one would run in a viewer's
    browser."""
    user = {
        "path": "/users/linker",
        "responses": [
            {
                "status": 200,
                "body": {
                    "login": "linker",
                    "html_url": "javascript:alert(document.cookie)",
                    "avatar_url": "https://avatars.example/u/1",
                },
            }
        ],
    }
    repo = {
        "path": "/repos/octo/good",
        "responses": [{"status": 200, "body": {"html_url": " JavaScript:alert(1)"}}],
    }
    routes = [user, _search("linker", [_pr("{base}/repos/octo/good")]), repo]
    with replay_server(routes) as github:
        async with GitHubClient(github.base_url) as client:
            result = await analyse(client, "linker", Period.ALL, lambda *_: None)
    assert result["profile"]["html_url"] is None
    assert result["profile"]["avatar_url"] == "https://avatars.example/u/1"
    assert [r["url"] for r in result["repositories"]] == [None]


async def test_api_data_of_the_wrong_shape_neither_fails_nor_reaches_the_result() -> None:
    """A hostile API's objects where strings or counts belong went into the result as they
    were (a dashboard renders a name, not an object) or failed the analysis (a list as a
    language is no dictionary key; a string where a pull request's details belong)."""
    user = {
        "path": "/users/shapes",
        "responses": [
            {
                "status": 200,
                "body": {
                    "login": "shapes",
                    "name": {"$$typeof": "react.element", "props": {}},
                    "followers": "a lot",
                    "public_repos": [1, 2],
                    "created_at": 5,
                },
            }
        ],
    }
    items: list[Any] = [
        "not a pull request",
        {"state": "open", "repository_url": "{base}/repos/octo/good", "pull_request": "merged"},
    ]
    repo = {
        "path": "/repos/octo/good",
        "responses": [{"status": 200, "body": {"language": ["Go"], "stargazers_count": {}}}],
    }
    routes = [user, _search("shapes", items), repo]
    with replay_server(routes) as github:
        async with GitHubClient(github.base_url) as client:
            result = await analyse(client, "shapes", Period.ALL, lambda *_: None)
    assert result["profile"] == {
        "login": "shapes",
        "name": None,
        "public_repos": None,
        "followers": None,
        "created_at": None,
        "avatar_url": None,
        "html_url": None,
    }
    assert result["pull_requests"]["total"] == 1
    assert result["repositories"][0]["language"] is None
    assert result["repositories"][0]["stars"] == 0
    assert result["languages"] == {}
