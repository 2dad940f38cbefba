"""Hourly failure counts per fingerprint, for the `new_failure` rule (measures.FailureCounts):
the failures page's fingerprints (`tasklens.failures`: exception type, normalised message,
the app's frame), so the group an alert names is the group the page shows. Dismissed tasks
count too: a failure an operator dismissed was still seen before."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from tasklens.failures.groups import scan
from tasklens.monitoring import HOUR, floor_hour
from tasklens.tracking.models import utcnow


async def failure_counts(
    engine: AsyncEngine, since: datetime, task_name: str | None
) -> dict[str, list[int]]:
    """{fingerprint: failed attempts per hour from `since`'s hour to now's, the current
    hour last} (at most `failures.groups.SCAN_LIMIT` of the newest failed rows)."""
    now = utcnow()
    start = floor_hour(since)
    hours = int((floor_hour(now) - start) / HOUR) + 1
    async with AsyncSession(engine) as session:
        found = await scan(session, since, include_dismissed=True)
    counts: dict[str, list[int]] = {}
    for row in found.rows:
        if task_name is not None and row.task_name != task_name:
            continue
        hour = min(hours - 1, max(0, int((floor_hour(row.created_at) - start) / HOUR)))
        counts.setdefault(row.signature.fingerprint, [0] * hours)[hour] += 1
    return counts
