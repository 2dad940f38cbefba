"""GitHub user analysis through the GitHub REST API (httpx): profile, pull requests authored
in the period, and the repositories they went to.

Failures are classified for the task runner: an unknown user is permanent; a rate limit
(403/429 with `X-RateLimit-Reset` or `Retry-After`) says when to try again; network errors
and 5xx are transient (retried with backoff). The token, when set, goes only into the
Authorization header: never into params, results, events or logs.

API answers are data, not directions: every request (redirects included) must stay on the
configured API origin and under its path, a `next` link must page the same endpoint, and the
repositories asked about are built from names that pass GitHub's naming rules.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tasklens.analyses.periods import Period

LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\Z")  # \Z: no final newline
_REPOSITORY_URL = re.compile(r"/repos/([A-Za-z0-9][A-Za-z0-9-]{0,38})/([A-Za-z0-9._-]{1,100})\Z")
ProgressFn = Callable[[float, str], None]


class GitHubError(Exception):
    """Permanent: retrying will not help."""


class UnknownUser(GitHubError):
    pass


class TransientGitHubError(Exception):
    """Network trouble or a 5xx: worth retrying with backoff."""


class RateLimited(Exception):
    def __init__(self, retry_at: datetime) -> None:
        super().__init__(f"GitHub rate limit reached; it resets at {retry_at.isoformat()}")
        self.retry_at = retry_at


def validate_login(login: str) -> str:
    if not LOGIN.match(login):
        raise ValueError(
            "subject: a GitHub login is 1-39 letters, digits or hyphens, not starting with a hyphen"
        )
    return login


class GitHubClient:
    def __init__(
        self, base_url: str, token: str | None = None, *, timeout: float = 20.0, max_pages: int = 10
    ) -> None:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "TaskLens",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base = httpx.URL(base_url.rstrip("/") + "/")
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            follow_redirects=True,
            event_hooks={"request": [self._refuse_elsewhere]},
        )
        self.max_pages = max_pages

    def is_inside(self, url: httpx.URL) -> bool:
        """On the configured API origin, under its path (GitHub Enterprise's /api/v3)."""
        return (url.scheme, url.host, url.port) == (
            self.base.scheme,
            self.base.host,
            self.base.port,
        ) and url.path.startswith(self.base.path)

    async def _refuse_elsewhere(self, request: httpx.Request) -> None:
        """Every request, redirected ones too: the token goes nowhere else."""
        if not self.is_inside(request.url):
            raise GitHubError(
                f"refused a request outside the GitHub API ({self.base.scheme}://"
                f"{self.base.netloc.decode()}{self.base.path})"
            )

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def get(self, url: str, params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self._http.get(url, params=params)
        except httpx.TransportError as exc:
            raise TransientGitHubError(f"GitHub unreachable: {type(exc).__name__}") from None
        if response.status_code in (403, 429):
            retry_at = _rate_limit_reset(response)
            if retry_at is not None:
                raise RateLimited(retry_at)
        if response.status_code >= 500:
            raise TransientGitHubError(f"GitHub answered {response.status_code}")
        return response

    async def pages(self, url: str, params: dict[str, Any]) -> AsyncIterator[Any]:
        """Each page's JSON, following `Link: <…>; rel="next"` up to `max_pages`."""
        next_url: str | None = url
        query: dict[str, Any] | None = params
        for _ in range(self.max_pages):
            if next_url is None:
                return
            response = await self.get(next_url, query)
            if response.status_code != 200:
                raise GitHubError(f"GitHub answered {response.status_code} for {url}")
            yield response.json()
            next_url = response.links.get("next", {}).get("url")
            if next_url is not None and _path_of(next_url) != response.url.path:
                raise GitHubError(f"GitHub's next page of {url} lies outside it; not followed")
            query = None  # the next link carries its own query


def _path_of(url: str) -> str | None:
    try:
        return httpx.URL(url).path
    except httpx.InvalidURL:
        return None


def repository_name(url: object) -> str | None:
    """`owner/name` from an API repository URL, or None unless both are valid names (the
    name goes into a request path)."""
    if not isinstance(url, str):
        return None
    try:
        parts = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    match = _REPOSITORY_URL.search(parts.path)
    if match is None or parts.query or parts.fragment or match.group(2) in (".", ".."):
        return None
    return f"{match.group(1)}/{match.group(2)}"


def web_url(value: object) -> str | None:
    """A link from API data that the dashboard renders: https only (never `javascript:`)."""
    if isinstance(value, str) and value.lower().startswith("https://"):
        return value
    return None


def _text(value: object) -> str | None:
    """A string from API data, or None: an object where a name belongs never reaches the
    result (nor a dashboard that renders it)."""
    return value[:1000] if isinstance(value, str) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _objects(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _rate_limit_reset(response: httpx.Response) -> datetime | None:
    now = datetime.now(UTC)
    retry_after = response.headers.get("Retry-After")
    if retry_after and retry_after.isdigit():
        return now + timedelta(seconds=int(retry_after))
    if response.headers.get("X-RateLimit-Remaining") == "0":
        reset = response.headers.get("X-RateLimit-Reset", "")
        if reset.isdigit():
            return datetime.fromtimestamp(int(reset), UTC)
        return now + timedelta(seconds=60)
    return None


async def analyse(
    client: GitHubClient,
    login: str,
    period: Period,
    progress: ProgressFn,
    now: datetime | None = None,
    top_repositories: int = 20,
) -> dict[str, Any]:
    validate_login(login)
    since = period.since(now or datetime.now(UTC))
    progress(0.1, "reading the profile")
    response = await client.get(f"/users/{login}")
    if response.status_code == 404:
        raise UnknownUser(f"GitHub user '{login}' does not exist")
    if response.status_code != 200:
        raise GitHubError(f"GitHub answered {response.status_code} for user '{login}'")
    user = response.json()
    if not isinstance(user, dict):
        raise GitHubError(f"GitHub's answer for user '{login}' is not a user")

    progress(0.3, "listing pull requests")
    query = f"author:{login} type:pr" + (f" created:>={since:%Y-%m-%d}" if since else "")
    pulls: list[dict[str, Any]] = []
    async for page in client.pages("/search/issues", {"q": query, "per_page": 100}):
        pulls += _objects(page.get("items") if isinstance(page, dict) else None)
    merged = sum(
        1 for p in pulls if isinstance(d := p.get("pull_request"), dict) and d.get("merged_at")
    )
    still_open = sum(1 for p in pulls if p.get("state") == "open")

    progress(0.6, "reading repositories")
    per_repo = Counter(
        name for p in pulls if (name := repository_name(p.get("repository_url"))) is not None
    )
    repositories = []
    languages: Counter[str] = Counter()
    for full_name, count in per_repo.most_common(top_repositories):
        repo_response = await client.get(f"/repos/{full_name}")
        if repo_response.status_code != 200:
            continue  # deleted or private since: skip it, keep the rest
        repo = repo_response.json()
        if not isinstance(repo, dict):
            continue
        language = _text(repo.get("language"))
        repositories.append(
            {
                "full_name": full_name,
                "stars": _count(repo.get("stargazers_count")) or 0,
                "language": language,
                "pull_requests": count,
                "url": web_url(repo.get("html_url")),
            }
        )
        if language:
            languages[language] += count
    progress(0.95, "summarising")
    return {
        "period": period.value,
        "since": since.isoformat() if since else None,
        "profile": {
            **{key: _text(user.get(key)) for key in ("login", "name", "created_at")},
            **{key: _count(user.get(key)) for key in ("public_repos", "followers")},
            "avatar_url": web_url(user.get("avatar_url")),
            "html_url": web_url(user.get("html_url")),
        },
        "pull_requests": {
            "total": len(pulls),
            "merged": merged,
            "open": still_open,
            "closed_unmerged": len(pulls) - merged - still_open,
        },
        "repositories": repositories,
        "languages": dict(languages.most_common()),
    }
