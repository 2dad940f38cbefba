"""Scheduled refreshes: analyses re-run on a cron or an interval, at low priority.

Configured in a JSON file (`TASKLENS_SCHEDULES_FILE`) read by taskiq's own scheduler
(`tasklens scheduler`):

    {"schedules": [
      {"kind": "repository", "subject": "https://github.com/taskiq-python/taskiq.git",
       "period": "1_month", "cron": "0 * * * *"},
      {"kind": "github_user", "subject": "octocat", "interval_seconds": 3600}
    ]}

Each firing sends `analysis.scheduled_refresh`, which submits the analysis like an operator's
forced refresh (deduplicated against a run already queued or running) on the low queue.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, model_validator
from taskiq import ScheduledTask, ScheduleSource

from tasklens.analyses.kinds import AnalysisKind
from tasklens.analyses.periods import Period
from tasklens.priorities import Priority, stream_for

REFRESH_TASK = "analysis.scheduled_refresh"


class ScheduleEntry(BaseModel):
    kind: AnalysisKind
    subject: str = Field(min_length=1, max_length=2000)
    period: Period | None = None
    cron: str | None = None
    interval_seconds: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleEntry:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give either cron or interval_seconds")
        return self

    @property
    def schedule_id(self) -> str:
        raw = json.dumps(
            [self.kind.value, self.subject, self.period, self.cron, self.interval_seconds]
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


class SchedulesFileError(ValueError):
    pass


def load_schedules(path: Path) -> list[ScheduleEntry]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SchedulesFileError(f"{path}: {exc}") from None
    entries = data.get("schedules") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SchedulesFileError(f'{path}: expected {{"schedules": [...]}}')
    loaded = []
    for index, entry in enumerate(entries):
        try:
            loaded.append(ScheduleEntry.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "".join(f".{p}" for p in first["loc"])
            raise SchedulesFileError(f"{path}: schedules[{index}]{where}: {first['msg']}") from None
    return loaded


class FileScheduleSource(ScheduleSource):
    """taskiq schedule source over the schedules file, re-read at every scheduler tick so
    edits apply without a restart (a broken edit keeps the last good schedules)."""

    def __init__(self, path: Path, queue_name: str) -> None:
        self.path = path
        self.queue = stream_for(queue_name, Priority.LOW)
        self._last_good: list[ScheduledTask] = []

    async def get_schedules(self) -> list[ScheduledTask]:
        try:
            entries = load_schedules(self.path)
        except SchedulesFileError:
            return self._last_good
        self._last_good = [
            ScheduledTask(
                task_name=REFRESH_TASK,
                labels={"queue_name": self.queue},
                args=[],
                kwargs={
                    "kind": e.kind.value,
                    "subject": e.subject,
                    "period": e.period.value if e.period else None,
                },
                schedule_id=e.schedule_id,
                cron=e.cron,
                interval=e.interval_seconds,
            )
            for e in entries
        ]
        return self._last_good
