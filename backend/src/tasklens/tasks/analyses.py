"""The analysis tasks: TaskIQ wrappers that give the engines their settings and a progress
reporter, save a successful result to the cache, and free the analysis's claim however
the run ends (so an identical request may run it again); a saved run frees it as its
finisher, so a request that read the cache before the save does not run it again, and a
run without a result as a failure, so merely reading the analysis does not run it again."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy.ext.asyncio import AsyncEngine
from taskiq import Context, TaskiqDepends, TaskiqState
from taskiq.kicker import AsyncKicker

from tasklens.analyses import github, repository, results
from tasklens.analyses.github import TransientGitHubError
from tasklens.analyses.kinds import KINDS, AnalysisKind, analysis_key
from tasklens.analyses.periods import Period
from tasklens.coordination import Coordinator
from tasklens.priorities import Priority
from tasklens.settings import Settings
from tasklens.tracking.middleware import Deferred
from tasklens.tracking.progress import Progress


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
    progress: Progress,
    kind: AnalysisKind,
    subject: str,
    period: Period,
    work: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    key = analysis_key(kind, subject, period)
    task_id = context.message.task_id
    keep_claim = False
    saved = False
    slot = None
    try:
        slot = await _take_subject_slot(services, kind, subject, task_id)
        if slot is None:  # the subject is busy: back to the queue, to wait there
            await _send_again(context, delay=1.0)
            keep_claim = True
            raise Deferred(f"{kind.value} '{subject}' is busy; sent back to the queue")
        progress.started()
        result = await work()
        await results.save(
            services.engine,
            results.new_record(key, kind.value, subject, {"period": period.value}, result, task_id),
        )
        saved = True
        return result
    except github.RateLimited as exc:  # not a failure of the task: run it after the reset
        await _send_again(context, delay=_seconds_until(exc.retry_at) + 1, next_attempt=True)
        keep_claim = True
        raise
    except TRANSIENT_ERRORS:
        keep_claim = _will_retry(context, services.settings.max_retries)
        raise
    finally:
        if slot is not None:
            progress.ended()  # logged as over before another run of the subject starts
            await services.coordinator.release(slot, task_id)
        if saved:  # after the save: a request that claims next finds the result (service.py)
            await services.coordinator.finish(
                claim_key(key), task_id, services.settings.report_stale_after_seconds
            )
        elif not keep_claim:  # a deferred, rescheduled or retried run still holds it
            # Ended without a result (failed for good, cancelled): remembered, so reading
            # the analysis shows this failure rather than starting it again (service.py).
            await services.coordinator.fail(
                claim_key(key), task_id, services.settings.report_stale_after_seconds
            )


async def _take_subject_slot(
    services: AnalysisServices, kind: AnalysisKind, subject: str, task_id: str
) -> str | None:
    """One of the subject's `MAX_SUBJECT_CONCURRENT_TASKS` slots, waited for a short while;
    its TTL frees it if this worker dies."""
    settings = services.settings
    subject_hash = hashlib.sha256(subject.encode()).hexdigest()[:32]
    slots = [
        f"subject:{kind.value}:{subject_hash}:{i}"
        for i in range(settings.max_subject_concurrent_tasks)
    ]
    ttl = int(settings.longest_task_seconds) + 10
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.subject_slot_wait_seconds
    while True:
        for slot in slots:
            holder = await services.coordinator.claim(slot, task_id, ttl)
            if holder is None or holder == task_id:
                return slot
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(0.25)


def _seconds_until(moment: datetime) -> float:
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _will_retry(context: Context, max_retries: int) -> bool:
    return int(context.message.labels.get("_retries", 0)) + 1 < max_retries + 1


async def _send_again(context: Context, delay: float, next_attempt: bool = False) -> None:
    """This task again, same id, started by the broker after `delay` seconds: as the same
    attempt (it has not run yet) or as the next one."""
    message = context.message
    labels = {k: v for k, v in message.labels.items() if k != "delay"}
    if next_attempt:
        labels["_retries"] = int(message.labels.get("_retries", 0)) + 1
    kicker: AsyncKicker[Any, Any] = AsyncKicker(
        task_name=message.task_name, broker=context.broker, labels=labels
    )
    await (
        kicker.with_task_id(message.task_id)
        .with_labels(delay=max(delay, 0.1))
        .kiq(*message.args, **message.kwargs)
    )


Engine = Callable[[AnalysisServices, str, Period, Progress], Awaitable[dict[str, Any]]]


async def _analyse_repository(
    services: AnalysisServices, subject: str, period: Period, progress: Progress
) -> dict[str, Any]:
    settings = services.settings
    hosts = settings.allowed_git_hosts
    source = repository.parse_subject(subject, settings.repo_roots, hosts)
    return await repository.analyse(source, period, progress, allowed_hosts=hosts)


async def _analyse_github_user(
    services: AnalysisServices, subject: str, period: Period, progress: Progress
) -> dict[str, Any]:
    settings = services.settings
    token = settings.github_token.get_secret_value() if settings.github_token else None
    async with github.GitHubClient(settings.github_api_url, token) as client:
        return await github.analyse(client, subject, period, progress)


def _analysis_task(kind: AnalysisKind, engine: Engine) -> Callable[..., Awaitable[Any]]:
    """The TaskIQ task of one kind: its engine run by `_run` (slot, cache, claim), with
    the kind's default period (kinds.py)."""

    async def analyse(
        subject: str,
        period: str = KINDS[kind].default_period.value,
        progress: Progress = TaskiqDepends(),
        context: Context = TaskiqDepends(),
        services: AnalysisServices = TaskiqDepends(services_of),
    ) -> dict[str, Any]:
        chosen = Period(period)

        async def work() -> dict[str, Any]:
            return await engine(services, subject, chosen, progress)

        return await _run(services, context, progress, kind, subject, chosen, work)

    analyse.__name__ = analyse.__qualname__ = f"analyse_{kind.value}"
    return analyse


async def scheduled_refresh(
    kind: str,
    subject: str,
    period: str | None = None,
    context: Context = TaskiqDepends(),
    services: AnalysisServices = TaskiqDepends(services_of),
) -> dict[str, Any]:
    """Sent by the scheduler: submits a forced, low-priority run of the analysis (joining
    one already queued or running)."""
    from tasklens.analyses.service import AnalysisService  # the service imports this module

    service = AnalysisService(
        services.settings, services.engine, services.coordinator, context.broker, None
    )
    analysis = service.analysis(AnalysisKind(kind), subject, Period(period) if period else None)
    submitted = await service.submit(analysis, force=True, priority=Priority.LOW)
    return {"task_id": submitted.task_id, "deduplicated": submitted.deduplicated}


TASKS = {
    KINDS[AnalysisKind.REPOSITORY].task_name: _analysis_task(
        AnalysisKind.REPOSITORY, _analyse_repository
    ),
    KINDS[AnalysisKind.GITHUB_USER].task_name: _analysis_task(
        AnalysisKind.GITHUB_USER, _analyse_github_user
    ),
}
SCHEDULER_TASKS = {"analysis.scheduled_refresh": scheduled_refresh}
