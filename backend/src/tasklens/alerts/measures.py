"""Each rule kind's value, read from what TaskLens already keeps: the log (failure rates,
p95), the queue streams (the oldest waiting message), the workers' heartbeats and the
recorder's losses. A `Reading` says whether the rule is breached now; the engine decides
what that means for its firing (engine.py)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from tasklens import rollups
from tasklens.alerts.rules import (
    FailureRateRule,
    LogLossRule,
    NewFailureRule,
    NoWorkersRule,
    QueueAgeRule,
    Rule,
    SlowRule,
)
from tasklens.priorities import PRIORITY_ORDER, Priority, stream_for
from tasklens.tracking.heartbeat import OFFLINE_AFTER_SECONDS
from tasklens.tracking.log_spill import spill_state
from tasklens.tracking.models import TaskExecutionLog, TaskStatus
from tasklens.tracking.recorder import LifecycleRecorder
from tasklens.tracking.redis_keys import WORKERS

Log = TaskExecutionLog
GROUP = "tasklens"  # the consumer group of TaskLens's workers (process.build_broker)
# A slow rule reads at most this many of the window's newest successful durations.
SLOW_SAMPLES = 10_000
# {fingerprint: counts per hour, oldest first, the current hour last} over `since`..now.
FailureCounts = Callable[[AsyncEngine, datetime, str | None], Awaitable[dict[str, list[int]]]]


@dataclass(frozen=True, slots=True)
class Reading:
    value: float | None  # None: nothing to judge (too few runs, never measured)
    breached: bool
    detail: dict[str, str | int | float] = field(default_factory=dict)


@dataclass
class Sources:
    """What the measures read. `redis` is None in the embedded mode, where this process
    is the only worker and its queue is memory."""

    engine: AsyncEngine
    redis: Redis | None
    queue_name: str
    recorder: LifecycleRecorder
    failure_counts: FailureCounts | None = None


class HeldFor:
    """How long a state has held, for the kinds whose value is a duration: remembered by
    the process that evaluates (a new evaluator starts counting anew)."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def seconds(self, key: str, holds: bool, now: float, began: float | None = None) -> float:
        if not holds:
            self._since.pop(key, None)
            return 0.0
        since = self._since.setdefault(key, began if began is not None else now)
        return max(0.0, now - since)

    def forget_others(self, keys: set[str]) -> None:
        for key in set(self._since) - keys:
            del self._since[key]


class Measures:
    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.held = HeldFor()
        self._last_losses: dict[str, int] = {}

    async def read(self, rule: Rule, now: datetime) -> Reading:
        match rule:
            case FailureRateRule():
                return await self.failure_rate(rule, now)
            case SlowRule():
                return await self.slow(rule, now)
            case QueueAgeRule():
                return await self.queue_age(rule, now)
            case NoWorkersRule():
                return await self.no_workers(rule, now)
            case LogLossRule():
                return await self.log_loss(rule, now)
            case NewFailureRule():
                return await self.new_failure(rule, now)

    async def failure_rate(self, rule: FailureRateRule, now: datetime) -> Reading:
        """failed / finished (success, failed, cancelled) among attempts created in the
        window; breached only with at least `min_runs` finished."""
        since = now - timedelta(minutes=rule.window_minutes)
        query = sa.select(col(Log.status), sa.func.count()).where(
            col(Log.created_at) >= since,
            col(Log.status).in_([TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED]),
        )
        if rule.task_name is not None:
            query = query.where(col(Log.task_name) == rule.task_name)
        async with self.sources.engine.connect() as conn:
            counts = {str(s): int(n) for s, n in await conn.execute(query.group_by(Log.status))}
        finished = sum(counts.values())
        if not finished:
            return Reading(None, False, {"finished": 0})
        rate = counts.get(TaskStatus.FAILED.value, 0) / finished
        detail: dict[str, str | int | float] = {
            "finished": finished,
            "failed": counts.get("failed", 0),
        }
        return Reading(rate, finished >= rule.min_runs and rate > rule.threshold, detail)

    async def slow(self, rule: SlowRule, now: datetime) -> Reading:
        """Nearest-rank p95 of the successful runs' durations created in the window."""
        since = now - timedelta(minutes=rule.window_minutes)
        query = (
            sa.select(col(Log.duration_ms))
            .where(
                col(Log.task_name) == rule.task_name,
                col(Log.status) == TaskStatus.SUCCESS,
                col(Log.created_at) >= since,
                col(Log.duration_ms).is_not(None),
            )
            .order_by(col(Log.created_at).desc())
            .limit(SLOW_SAMPLES)
        )
        async with self.sources.engine.connect() as conn:
            durations = [float(d) for d in (await conn.execute(query)).scalars() if d is not None]
        p95 = rollups.exact_percentile(durations, 0.95)
        if p95 is None:
            return Reading(None, False, {"runs": 0})
        breached = len(durations) >= rule.min_runs and p95 > rule.threshold
        return Reading(p95, breached, {"runs": len(durations)})

    async def queue_age(self, rule: QueueAgeRule, now: datetime) -> Reading:
        """Seconds the oldest message no worker has taken yet has waited: its stream id is
        its enqueue time. Embedded: the oldest `pending` row of the last day (the queue is
        this process's memory)."""
        redis = self.sources.redis
        if redis is None:
            query = sa.select(sa.func.min(col(Log.created_at))).where(
                col(Log.status) == TaskStatus.PENDING,
                col(Log.created_at) >= now - timedelta(days=1),
            )
            async with self.sources.engine.connect() as conn:
                oldest = await conn.scalar(query)
            age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
            return Reading(age, age > rule.threshold)
        priorities = [Priority(rule.queue)] if rule.queue else list(PRIORITY_ORDER)
        ages: dict[str, float] = {}
        for priority in priorities:
            ages[priority.value] = await _oldest_waiting(
                redis, stream_for(self.sources.queue_name, priority), now
            )
        oldest_queue = max(ages, key=lambda q: ages[q])
        age = ages[oldest_queue]
        return Reading(age, age > rule.threshold, {"queue": oldest_queue})

    async def no_workers(self, rule: NoWorkersRule, now: datetime) -> Reading:
        """Seconds since a worker was last online (a heartbeat within 30 s). A worker that
        stopped cleanly leaves the hash: then from when this evaluator first saw none.
        Embedded: this process is the worker, never without one."""
        redis = self.sources.redis
        if redis is None:
            return Reading(0.0, False)
        clock = now.timestamp()
        beats = []
        for raw in (await redis.hgetall(WORKERS)).values():
            try:
                beats.append(float(json.loads(raw)["last_seen"]))
            except (ValueError, KeyError, TypeError):
                continue
        newest = max(beats, default=None)
        online = newest is not None and clock - newest <= OFFLINE_AFTER_SECONDS
        began = None if newest is None else newest + OFFLINE_AFTER_SECONDS
        seconds = self.held.seconds(rule.name, not online, clock, began)
        return Reading(seconds, not online and seconds > rule.threshold, {"known": len(beats)})

    async def log_loss(self, rule: LogLossRule, now: datetime) -> Reading:
        """Seconds the log has been losing: rows dropped since the last round, rows spilled
        to Redis and not yet written (the database refuses them), or this process's own
        writes failing since the last round."""
        stats = self.sources.recorder.stats
        figures = {"write_failures": stats.write_failures, "rows_dropped": stats.rows_dropped}
        unwritten = 0
        if self.sources.redis is not None:
            figures["rows_dropped"], unwritten = await spill_state(self.sources.redis)
        grew = [k for k, v in figures.items() if v > self._last_losses.get(k, v)]
        self._last_losses = figures
        losing = bool(grew) or unwritten > 0
        seconds = self.held.seconds(rule.name, losing, now.timestamp())
        detail: dict[str, str | int | float] = {"batches_unwritten": unwritten, **figures}
        return Reading(seconds, losing and seconds > rule.threshold, detail)

    async def new_failure(self, rule: NewFailureRule, now: datetime) -> Reading:
        """How many failure fingerprints are new this hour (none in the window's earlier
        hours) or jumped to `threshold` times their busiest earlier hour."""
        counts_of = self.sources.failure_counts
        if counts_of is None:
            return Reading(None, False, {"unavailable": "no failure fingerprints"})
        since = now - timedelta(minutes=rule.window_minutes)
        jumped: list[str] = []
        for fingerprint, hours in (
            await counts_of(self.sources.engine, since, rule.task_name)
        ).items():
            *before, current = hours or [0]
            if current <= 0:
                continue
            busiest = max(before, default=0)
            if busiest == 0 or current >= rule.threshold * busiest:
                jumped.append(fingerprint)
        detail: dict[str, str | int | float] = {"fingerprints": ",".join(sorted(jumped)[:10])}
        return Reading(float(len(jumped)), bool(jumped), detail)


async def _oldest_waiting(redis: Redis, stream: str, now: datetime) -> float:
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no such stream yet: nothing waits
        return 0.0
    group = next((g for g in groups if _text(g["name"]) == GROUP), None)
    start = "-" if group is None else "(" + _text(group["last-delivered-id"])
    first = await redis.xrange(stream, start, "+", count=1)
    if not first:
        return 0.0
    enqueued_ms = int(_text(first[0][0]).split("-")[0])
    return max(0.0, now.timestamp() - enqueued_ms / 1000)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
