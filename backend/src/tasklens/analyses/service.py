"""Submitting analyses and reading their cached results: deduplicated, fresh or stale.

request → read the cache → claim the analysis key (one holder across every API process)
unless a run finished since the read → kick the task with the claimed task id → the task
saves its result, then frees the claim and marks itself its last finisher in one step.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from taskiq import AsyncBroker

from tasklens import monitoring
from tasklens.analyses import results
from tasklens.analyses.kinds import KINDS, AnalysisKind, analysis_key
from tasklens.analyses.periods import Period
from tasklens.coordination import Coordinator
from tasklens.priorities import Priority, stream_for
from tasklens.rate_limit import Limit, RateLimiter
from tasklens.settings import Settings
from tasklens.tasks.analyses import claim_key
from tasklens.tracking.database import fetch_row
from tasklens.tracking.models import AnalysisRefresh, AnalysisResult, TaskExecutionLog


class RefreshLimited(Exception):
    status_code = 429  # a refusal, as the API answers it (and the audit log records it)

    def __init__(self, retry_in: float, limit: Limit) -> None:
        super().__init__(
            f"refresh limit reached ({limit.count} per {limit.seconds} s); "
            f"retry in {math.ceil(retry_in)} s"
        )
        self.retry_in = retry_in


class InvalidAnalysis(ValueError):
    """A request that names something TaskLens will not analyse (message names the field)."""


@dataclass(frozen=True, slots=True)
class Analysis:
    kind: AnalysisKind
    subject: str
    period: Period

    @property
    def key(self) -> str:
        return analysis_key(self.kind, self.subject, self.period)


@dataclass(frozen=True, slots=True)
class Submitted:
    task_id: str
    status: str
    deduplicated: bool
    cached: bool = False


@dataclass(frozen=True, slots=True)
class CachedView:
    record: AnalysisResult | None
    is_stale: bool
    regenerating_task_id: str | None
    live_unavailable: bool = False  # Redis unreachable: whether it regenerates is unknown
    failed_task_id: str | None = None  # the last run ended without a result, not long ago


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    requested_by: str
    requested_at: datetime
    task_id: str
    deduplicated: bool
    outcome: str
    duration_ms: float | None


_LAST_STATUS = (
    select(col(TaskExecutionLog.status))
    .where(col(TaskExecutionLog.task_id) == sa.bindparam("task_id"))
    .order_by(col(TaskExecutionLog.attempt).desc())
    .limit(1)
)


class AnalysisService:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        coordinator: Coordinator,
        broker: AsyncBroker,
        refresh_limiter: RateLimiter | None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.coordinator = coordinator
        self.broker = broker
        self.refresh_limiter = refresh_limiter
        # Analysis key → the answer of the unforced submit of it in flight in this process.
        self._submitting: dict[str, asyncio.Future[Submitted]] = {}

    @property
    def claim_ttl(self) -> int:
        """Long enough to cover a wait in the queue and the run; a dead run frees it anyway."""
        return self.settings.task_timeout_seconds * 2

    def analysis(self, kind: AnalysisKind, subject: str, period: Period | None) -> Analysis:
        spec = KINDS[kind]
        try:
            checked = spec.check_subject(subject, self.settings)
        except ValueError as exc:
            reason = str(exc).removeprefix("subject: ")
            raise InvalidAnalysis(f"invalid subject: {reason}") from None
        return Analysis(kind, checked, period or spec.default_period)

    async def _check_reach(self, analysis: Analysis) -> None:
        """Resolving is slow and may change, so it is done only when a run is about to be
        queued (the worker checks again before it connects)."""
        try:
            await KINDS[analysis.kind].check_reach(analysis.subject, self.settings)
        except ValueError as exc:
            reason = str(exc).removeprefix("subject: ")
            raise InvalidAnalysis(f"invalid subject: {reason}") from None

    def is_stale(self, record: AnalysisResult) -> bool:
        return age_seconds(record) > self.settings.report_stale_after_seconds

    async def refresh(
        self,
        session: AsyncSession,
        analysis: Analysis,
        requested_by: str,
        priority: Priority = Priority.HIGH,
    ) -> Submitted:
        """A forced run, fresh result or not: rate-limited per token, and recorded."""
        assert self.refresh_limiter is not None, "refreshes are the API's: it has a limiter"
        retry_in = await self.refresh_limiter.hit(requested_by)
        if retry_in is not None:
            raise RefreshLimited(retry_in, self.settings.refresh_rate_limit)
        submitted = await self.submit(analysis, force=True, priority=priority)
        session.add(
            AnalysisRefresh(
                key=analysis.key,
                requested_by=requested_by,
                requested_at=datetime.now(UTC),
                task_id=submitted.task_id,
                deduplicated=submitted.deduplicated,
            )
        )
        await session.commit()
        return submitted

    async def refreshes_left(self, requested_by: str) -> tuple[int, int, int]:
        """Forced refreshes `requested_by` may still make now, of how many per how long."""
        assert self.refresh_limiter is not None, "refreshes are the API's: it has a limiter"
        limit = self.settings.refresh_rate_limit
        return await self.refresh_limiter.remaining(requested_by), limit.count, limit.seconds

    async def refreshes(
        self, session: AsyncSession, analysis: Analysis, limit: int = 50
    ) -> list[RefreshRecord]:
        rows = (
            (
                await session.execute(
                    select(AnalysisRefresh)
                    .where(col(AnalysisRefresh.key) == analysis.key)
                    .order_by(col(AnalysisRefresh.requested_at).desc())
                    .limit(limit)
                )
            )
            .scalars()
            .all()
        )
        history = []
        for row in rows:
            attempts = await monitoring.task_attempts(session, row.task_id)
            last = attempts[-1] if attempts else None
            history.append(
                RefreshRecord(
                    requested_by=row.requested_by,
                    requested_at=row.requested_at,
                    task_id=row.task_id,
                    deduplicated=row.deduplicated,
                    outcome=str(last.status) if last else "pending",
                    duration_ms=last.duration_ms if last else None,
                )
            )
        return history

    async def submit(
        self, analysis: Analysis, force: bool = False, priority: Priority = Priority.DEFAULT
    ) -> Submitted:
        """Fresh cached result (unless forced) → that; the same analysis already queued or
        running → its task (deduplicated); else a new task. Atomic across API processes.

        Identical unforced requests in this process while one of them is being answered
        wait for its answer instead of asking the database and Redis again (a burst of the
        same request costs one lookup and one claim): deduplicated by it, or the same fresh
        result. Should it fail, each tries on its own."""
        cache_key = analysis.key  # a hash of its JSON: made once
        if force:
            return await self._submit(analysis, cache_key, force, priority)
        first = self._submitting.get(cache_key)
        if first is not None:
            try:
                answer = await asyncio.shield(first)
            except Exception:  # the first one's failure: this one asks for itself
                return await self._submit(analysis, cache_key, force, priority)
            return answer if answer.cached else replace(answer, deduplicated=True)
        answered: asyncio.Future[Submitted] = asyncio.get_running_loop().create_future()
        answered.add_done_callback(_retrieve)
        self._submitting[cache_key] = answered
        try:
            submitted = await self._submit(analysis, cache_key, force, priority)
        except BaseException as exc:
            answered.set_exception(
                exc if isinstance(exc, Exception) else RuntimeError("the first one was cancelled")
            )
            raise
        finally:
            del self._submitting[cache_key]
        answered.set_result(submitted)
        return submitted

    async def _submit(
        self, analysis: Analysis, cache_key: str, force: bool, priority: Priority
    ) -> Submitted:
        """Its reads are single statements outside a session: each holds a pooled connection
        only while it runs, never across the Redis calls."""
        cached = await results.read(self.engine, cache_key)
        if not force and cached is not None and not self.is_stale(cached):
            return Submitted(cached.task_id, "success", deduplicated=False, cached=True)
        await self._check_reach(analysis)
        task_id = uuid.uuid4().hex
        key = claim_key(cache_key)
        seen = cached.task_id if cached is not None else None
        while True:  # each turn needs another run to have finished: it ends
            claim = await self.coordinator.claim_unless_finished(key, task_id, self.claim_ttl, seen)
            if claim.holder is not None:
                return Submitted(claim.holder, await self._status(claim.holder), deduplicated=True)
            if claim.finished_by is None:
                break
            # A run finished between our cache read and our claim: it was queued or running
            # when this request came, so the request is answered by it, as it would have been
            # a moment earlier. Its result is saved before it finishes (tasks/analyses.py).
            record = await results.read(self.engine, cache_key)
            if record is not None and record.task_id == claim.finished_by:
                if force:
                    return Submitted(record.task_id, "success", deduplicated=True)
                if not self.is_stale(record):
                    return Submitted(record.task_id, "success", deduplicated=False, cached=True)
            seen = claim.finished_by  # stale already, or failed after the save: run again
        task = self.broker.find_task(KINDS[analysis.kind].task_name)
        assert task is not None
        try:
            await (
                task.kicker()
                .with_task_id(task_id)
                .with_labels(queue_name=stream_for(self.settings.queue_name, priority))
                .kiq(subject=analysis.subject, period=analysis.period.value)
            )
        except BaseException:
            await self.coordinator.release(key, task_id)
            raise
        return Submitted(task_id, "pending", deduplicated=False)

    async def _status(self, task_id: str) -> str:
        """The task's last attempt's status: what a deduplicated request answers."""
        last = await fetch_row(self.engine, _LAST_STATUS, {"task_id": task_id})
        return "pending" if last is None else str(last[0])

    async def never_started(self, analysis: Analysis, task_id: str) -> None:
        """`task_id` was cancelled (or purged) before a worker ran it, so it never frees its
        claim itself: free it now, remembered as a run that ended without a result, as the
        run would have (a page reading it shows the cancel instead of starting it again)."""
        await self.coordinator.fail(
            claim_key(analysis.key), task_id, self.settings.report_stale_after_seconds
        )

    async def view(
        self, session: AsyncSession, analysis: Analysis, may_regenerate: bool
    ) -> CachedView:
        """The cached result; a stale or missing one is regenerated if the caller may, unless
        its last run failed within the stale interval: reading never retries a failure (a
        page left open would start run after run), a user's retry or the interval does.
        With Redis unreachable a cached result is still served, saying so; only a missing
        one an operator would have generated is refused (new work needs the queue)."""
        record = await results.load(session, analysis.key)
        stale = record is None or self.is_stale(record)
        key = claim_key(analysis.key)
        failed = None
        try:
            regenerating = await self.coordinator.holder(key)
            if regenerating is None:
                failed = await self.coordinator.last_failed(key)
        except RedisError:
            if record is None and may_regenerate:
                raise
            return CachedView(record, stale, None, live_unavailable=True)
        if failed is not None:
            return CachedView(record, record is not None and stale, None, failed_task_id=failed)
        if stale and regenerating is None and may_regenerate:
            submitted = await self.submit(analysis)
            if submitted.cached:  # a run finished meanwhile: its result is the answer
                record = await results.load(session, analysis.key)
                return CachedView(record, False, None)
            regenerating = submitted.task_id
        return CachedView(record, record is not None and stale, regenerating)


def _retrieve(answer: asyncio.Future[Submitted]) -> None:
    """A failure nobody waited for is not reported as never retrieved (it was raised to the
    request that met it)."""
    if not answer.cancelled():
        answer.exception()


def age_seconds(record: AnalysisResult) -> float:
    return (datetime.now(UTC) - record.created_at).total_seconds()
