"""Hourly failure counts per fingerprint, for the `new_failure` rule (measures.FailureCounts).

A stand-in until the failure groups (`tasklens.failures`, issue 15's console) are on main:
its fingerprint (exception type, normalised message, the app's frame) is the one the
failures page shows and this rule should watch; swapping it in is this one function. Here
the fingerprint is the task name, the exception type and the message with its numbers, hex
ids and quoted values blanked, hashed: the same failure of different records counts as one.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from tasklens.monitoring import HOUR, floor_hour
from tasklens.tracking.models import TaskExecutionLog, TaskStatus, utcnow

Log = TaskExecutionLog
SCAN_LIMIT = 50_000  # the newest failed rows of the window read at most
_VARIABLE = re.compile(r"0x[0-9a-fA-F]+|[0-9a-fA-F]{8,}|\d+|'[^']*'|\"[^\"]*\"")


def fingerprint(task_name: str, error_message: str | None) -> str:
    normalised = _VARIABLE.sub("#", (error_message or "").split("\n", 1)[0][:300])
    return hashlib.sha256(f"{task_name}\0{normalised}".encode()).hexdigest()[:16]


async def failure_counts(
    engine: AsyncEngine, since: datetime, task_name: str | None
) -> dict[str, list[int]]:
    """{fingerprint: failed attempts per hour from `since`'s hour to now's, the current
    hour last}."""
    now = utcnow()
    start = floor_hour(since)
    hours = int((floor_hour(now) - start) / HOUR) + 1
    query = (
        sa.select(col(Log.task_name), col(Log.error_message), col(Log.created_at))
        .where(col(Log.status) == TaskStatus.FAILED, col(Log.created_at) >= since)
        .order_by(col(Log.created_at).desc())
        .limit(SCAN_LIMIT)
    )
    if task_name is not None:
        query = query.where(col(Log.task_name) == task_name)
    counts: dict[str, list[int]] = {}
    async with engine.connect() as conn:
        for name, message, created in await conn.execute(query):
            hour = min(hours - 1, int((floor_hour(created) - start) / HOUR))
            counts.setdefault(fingerprint(name, message), [0] * hours)[hour] += 1
    return counts
