"""Bulk actions on failed tasks: retry them (each as a new task, `task_control.retry`) or
dismiss them from the failure views.

Both act on tasks, not attempts: the distinct task ids of the selected failed rows, newest
first, leaving out tasks already taken out of the failure views. A bulk retry also takes
each task it retried out of them (`retried_as` names the new task), so a second click does
not send it twice; it retries at most `cap` tasks (TASKLENS_BULK_RETRY_MAX) per request,
the newest, and says how many it left.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from taskiq import AsyncBroker

from tasklens import task_control
from tasklens.analyses.service import AnalysisService
from tasklens.failures.groups import SCAN_LIMIT
from tasklens.monitoring import HistoryFilter, not_dismissed
from tasklens.tracking.models import TaskDismissal, TaskExecutionLog, TaskStatus, utcnow

Log = TaskExecutionLog
_CHUNK = 500  # task ids per IN (...) list
_COMMIT_EVERY = 50  # retries sent per committed batch of their dismissal rows


def distinct_tasks(task_ids: Iterable[str]) -> list[str]:
    """The task ids once each, in their first order (rows come newest first)."""
    return list(dict.fromkeys(task_ids))


async def tasks_matching(session: AsyncSession, where: HistoryFilter) -> list[str]:
    """Tasks with a failed row matching a history filter (its status is ignored: always
    `failed`), not dismissed, newest first; at most SCAN_LIMIT rows are read."""
    query = (
        sa.select(col(Log.task_id))
        .where(col(Log.status) == TaskStatus.FAILED.value, not_dismissed())
        .order_by(col(Log.created_at).desc(), col(Log.id).desc())
        .limit(SCAN_LIMIT)
    )
    where.status = None
    query = where.apply(query)
    return distinct_tasks((await session.execute(query)).scalars())


async def still_failed(session: AsyncSession, task_ids: Sequence[str]) -> list[str]:
    """Those of `task_ids` whose latest attempt failed (what a retry accepts), in order:
    a task retried in place by its own retries may have succeeded since."""
    latest: dict[str, tuple[int, str]] = {}
    for start in range(0, len(task_ids), _CHUNK):
        chunk = task_ids[start : start + _CHUNK]
        query = sa.select(col(Log.task_id), col(Log.attempt), col(Log.status)).where(
            col(Log.task_id).in_(chunk)
        )
        for task_id, attempt, status in await session.execute(query):
            if task_id not in latest or attempt > latest[task_id][0]:
                latest[task_id] = (attempt, status)
    return [t for t in task_ids if latest.get(t, (0, ""))[1] == TaskStatus.FAILED.value]


@dataclass(slots=True)
class Skipped:
    task_id: str
    error: str


@dataclass(slots=True)
class BulkRetried:
    matched: int
    retried: list[task_control.Retried] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def touched(self) -> int:
        return len(self.retried)


async def bulk_retry(
    session: AsyncSession,
    broker: AsyncBroker,
    analyses: AnalysisService,
    by: str,
    task_ids: Sequence[str],
    cap: int,
) -> BulkRetried:
    """Retry the first `cap` of `task_ids` (those still failed), each a new task, and take
    each retried one out of the failure views. A task the retry refuses (params with a
    secret, another app's task) is reported in `skipped` and stays."""
    candidates = await still_failed(session, task_ids)
    outcome = BulkRetried(matched=len(candidates))
    pending: list[task_control.Retried] = []
    for task_id in candidates[:cap]:
        try:
            retried = await task_control.retry(session, broker, analyses, task_id)
        except task_control.TaskActionRefused as exc:
            outcome.skipped.append(Skipped(task_id, str(exc)))
            continue
        outcome.retried.append(retried)
        pending.append(retried)
        if len(pending) >= _COMMIT_EVERY:
            await _record(session, by, {r.retry_of: r.task_id for r in pending})
            pending.clear()
    await _record(session, by, {r.retry_of: r.task_id for r in pending})
    return outcome


async def dismiss(session: AsyncSession, by: str, task_ids: Sequence[str]) -> int:
    """Take tasks out of the failure views; how many were not out already."""
    return await _record(session, by, dict.fromkeys(task_ids))


async def _record(session: AsyncSession, by: str, tasks: dict[str, str | None]) -> int:
    """One dismissal row per task (task id -> the retry sent for it, if any); an existing
    row is kept. Committed: the retries it stands for are already sent."""
    if not tasks:
        return 0
    now = utcnow()
    table = TaskDismissal.__table__  # type: ignore[attr-defined]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    written = 0
    items = list(tasks.items())
    for start in range(0, len(items), _CHUNK):
        rows = [
            {"task_id": t, "dismissed_at": now, "dismissed_by": by, "retried_as": new}
            for t, new in items[start : start + _CHUNK]
        ]
        statement = (
            insert(table)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["task_id"])
            .returning(table.c.task_id)
        )
        written += len((await session.execute(statement)).all())
    await session.commit()
    return written
