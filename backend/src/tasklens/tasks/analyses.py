"""The analysis tasks: TaskIQ wrappers that give the engines their settings and a progress
reporter, save a successful result to the cache, and free the analysis's claim however
the run ends (so an identical request may run it again)."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy.ext.asyncio import AsyncEngine
from taskiq import Context, TaskiqDepends, TaskiqState
from taskiq.kicker import AsyncKicker

from tasklens.analyses import github, repository, results
from tasklens.analyses.github import TransientGitHubError
from tasklens.analyses.kinds import AnalysisKind, analysis_key
from tasklens.analyses.periods import Period
from tasklens.coordination import Coordinator
from tasklens.progress import Progress
from tasklens.settings import Settings


@dataclass(frozen=True, slots=True)
class AnalysisServices:
    """What analysis tasks need besides their arguments; one per process (broker.state)."""

    settings: Settings
    coordinator: Coordinator
    engine: AsyncEngine


TRANSIENT_ERRORS = (TransientGitHubError, ConnectionError)  # retried by SmartRetryMiddleware


def services_of(state: Annotated[TaskiqState, TaskiqDepends()]) -> AnalysisServices:
    services: AnalysisServices = state.tasklens_services
    return services


def claim_key(key: str) -> str:
    return f"analysis:{key}"


async def _run(
    services: AnalysisServices,
    context: Context,
    kind: AnalysisKind,
    subject: str,
    period: Period,
    work: Awaitable[dict[str, Any]],
) -> dict[str, Any]:
    key = analysis_key(kind, subject, period)
    task_id = context.message.task_id
    keep_claim = False
    try:
        result = await work
        await results.save(
            services.engine,
            results.new_record(key, kind.value, subject, {"period": period.value}, result, task_id),
        )
        return result
    except github.RateLimited as exc:  # not a failure of the task: run it after the reset
        await _reschedule(context, exc.retry_at)
        keep_claim = True
        raise
    except TRANSIENT_ERRORS:
        keep_claim = _will_retry(context, services.settings.max_retries)
        raise
    finally:
        if not keep_claim:  # a rescheduled or retried run still holds the analysis
            await services.coordinator.release(claim_key(key), task_id)


def _will_retry(context: Context, max_retries: int) -> bool:
    return int(context.message.labels.get("_retries", 0)) + 1 < max_retries + 1


async def _reschedule(context: Context, retry_at: datetime) -> None:
    """The next attempt, sent now to start at `retry_at` (the broker holds it until then)."""
    message = context.message
    delay = max(1.0, (retry_at - datetime.now(UTC)).total_seconds() + 1)
    retries = int(message.labels.get("_retries", 0)) + 1
    labels = {k: v for k, v in message.labels.items() if k != "delay"}
    kicker: AsyncKicker[Any, Any] = AsyncKicker(
        task_name=message.task_name, broker=context.broker, labels=labels
    )
    await (
        kicker.with_task_id(message.task_id)
        .with_labels(_retries=retries, delay=delay)
        .kiq(*message.args, **message.kwargs)
    )


async def analyse_repository(
    subject: str,
    period: str = "all",
    progress: Progress = TaskiqDepends(),
    context: Context = TaskiqDepends(),
    services: AnalysisServices = TaskiqDepends(services_of),
) -> dict[str, Any]:
    chosen = Period(period)

    async def work() -> dict[str, Any]:
        source = repository.parse_subject(subject, services.settings.repo_roots)
        return await repository.analyse(source, chosen, progress)

    return await _run(services, context, AnalysisKind.REPOSITORY, subject, chosen, work())


async def analyse_github_user(
    subject: str,
    period: str = "1_year",
    progress: Progress = TaskiqDepends(),
    context: Context = TaskiqDepends(),
    services: AnalysisServices = TaskiqDepends(services_of),
) -> dict[str, Any]:
    chosen = Period(period)
    settings = services.settings

    async def work() -> dict[str, Any]:
        token = settings.github_token.get_secret_value() if settings.github_token else None
        async with github.GitHubClient(settings.github_api_url, token) as client:
            return await github.analyse(client, subject, chosen, progress)

    return await _run(services, context, AnalysisKind.GITHUB_USER, subject, chosen, work())


TASKS = {
    "analysis.repository": analyse_repository,
    "analysis.github_user": analyse_github_user,
}
