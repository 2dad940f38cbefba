"""Scheduled refreshes: analyses re-run on a cron or an interval, at low priority.

Configured in a JSON file (`TASKLENS_SCHEDULES_FILE`) read by taskiq's own scheduler
(`tasklens scheduler`), checked at startup (a bad entry stops it) and re-read every second:

    {"schedules": [
      {"kind": "repository", "subject": "https://github.com/taskiq-python/taskiq.git",
       "period": "1_month", "cron": "0 * * * *"},
      {"kind": "github_user", "subject": "octocat", "interval_seconds": 3600}
    ]}

Each firing sends `analysis.scheduled_refresh`, which submits the analysis like an operator's
forced refresh (deduplicated against a run already queued or running) on the low queue.
Several schedulers may run: a lease in Redis lets one of them send each period
(schedule_lease.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import ScheduledTask, ScheduleSource
from taskiq.exceptions import ScheduledTaskCancelledError

from tasklens.analyses.kinds import AnalysisKind
from tasklens.analyses.periods import Period
from tasklens.cron import check_cron
from tasklens.priorities import Priority, stream_for
from tasklens.schedule_lease import FiringLease, Sent, record_sent

logger = logging.getLogger(__name__)

REFRESH_TASK = "analysis.scheduled_refresh"


class ScheduleEntry(BaseModel):
    kind: AnalysisKind
    subject: str = Field(min_length=1, max_length=2000)
    period: Period | None = None
    cron: str | None = None
    interval_seconds: int | None = Field(default=None, ge=1)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

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
    """taskiq schedule source over the schedules file, re-read at every scheduler update
    (each second, see cli.py) so edits apply without a restart. A broken edit is logged once,
    naming the entry, and the last good schedules stay in force."""

    def __init__(
        self,
        path: Path,
        queue_name: str,
        lease: FiringLease | None = None,
        redis: Redis | None = None,
    ) -> None:
        """With `redis`, each send is remembered for the schedules view (schedule_runs.py)."""
        self.path = path
        self.queue_name = queue_name
        self.queue = stream_for(queue_name, Priority.LOW)
        self.lease = lease
        self.redis = redis
        self._last_good: list[ScheduledTask] = []
        self._last_error: str | None = None

    async def get_schedules(self) -> list[ScheduledTask]:
        try:
            entries = load_schedules(self.path)
        except SchedulesFileError as exc:
            if str(exc) != self._last_error:
                self._last_error = str(exc)
                logger.error("schedules file not applied, keeping the last good one: %s", exc)
            return self._last_good
        if self._last_error is not None:
            self._last_error = None
            logger.warning("schedules file applied again: %s", self.path)
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

    async def pre_send(self, task: ScheduledTask) -> None:
        """Send only if this scheduler is the first in the cluster for this period, under a
        task id of our own (taskiq's scheduler sends with `task.task_id`, and post_send
        remembers it)."""
        task.task_id = uuid.uuid4().hex
        if self.lease is None:
            return
        interval = task.interval if isinstance(task.interval, int) else None
        try:
            claimed = await self.lease.claim(task.schedule_id, datetime.now(UTC), interval)
        except RedisError as exc:
            logger.warning("schedule %s not sent: Redis unreachable (%s)", task.schedule_id, exc)
            raise ScheduledTaskCancelledError from None
        if not claimed:
            raise ScheduledTaskCancelledError

    async def post_send(self, task: ScheduledTask) -> None:
        if self.redis is None or task.task_id is None:
            return
        try:
            sent = Sent(task.task_id, datetime.now(UTC))
            await record_sent(self.redis, self.queue_name, task.schedule_id, sent)
        except RedisError as exc:  # sent all the same: only the view misses it
            logger.warning("schedule %s: could not record its send (%s)", task.schedule_id, exc)
