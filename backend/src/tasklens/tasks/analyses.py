"""The analysis tasks: thin TaskIQ wrappers that hand the engines their settings and a
progress reporter. Triggering, deduplication and caching live in the API (issue 3)."""

from __future__ import annotations

from typing import Annotated, Any

from taskiq import TaskiqDepends, TaskiqState

from tasklens.analyses import github, repository
from tasklens.analyses.periods import Period
from tasklens.progress import Progress
from tasklens.settings import Settings


def settings_of(state: Annotated[TaskiqState, TaskiqDepends()]) -> Settings:
    settings: Settings = state.tasklens_settings
    return settings


async def analyse_repository(
    subject: str,
    period: str = "all",
    progress: Progress = TaskiqDepends(),
    settings: Settings = TaskiqDepends(settings_of),
) -> dict[str, Any]:
    source = repository.parse_subject(subject, settings.repo_roots)
    return await repository.analyse(source, Period(period), progress)


async def analyse_github_user(
    subject: str,
    period: str = "1_year",
    progress: Progress = TaskiqDepends(),
    settings: Settings = TaskiqDepends(settings_of),
) -> dict[str, Any]:
    token = settings.github_token.get_secret_value() if settings.github_token else None
    async with github.GitHubClient(settings.github_api_url, token) as client:
        return await github.analyse(client, subject, Period(period), progress)


TASKS = {
    "analysis.repository": analyse_repository,
    "analysis.github_user": analyse_github_user,
}
