"""One firing per schedule and period across a cluster of schedulers.

Every `tasklens scheduler` process runs taskiq's loop over the same file, so each would
send each schedule. Before sending, a scheduler claims `<queue>:schedule-fired:<id>:<period
start>` with SET NX: the first claim sends, the others skip. The period's start is in the
key, so a scheduler restarted within a period finds the claim and does not send again.
A cron period is its minute; an interval period starts at a multiple of the interval since
the epoch, so every scheduler computes the same boundaries whatever its start time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis

from tasklens.tracking.redis_keys import schedule_fired, schedule_sent

CRON_PERIOD_SECONDS = 60  # taskiq matches a cron at most once a minute
KEEP_AFTER_PERIOD_SECONDS = 60
SENT_KEPT_SECONDS = 31 * 24 * 3600  # about the log's retention: the row goes then too


def period_start(now: datetime, interval_seconds: int | None) -> int:
    """Epoch second the current period began. `now` is rounded to the second first: taskiq
    wakes on the second boundary, sometimes a hair early, and a hair must not change it."""
    length = interval_seconds or CRON_PERIOD_SECONDS
    second = round(now.timestamp())
    return second - second % length


class FiringLease:
    def __init__(self, redis: Redis, queue_name: str) -> None:
        self._redis = redis
        self._queue_name = queue_name

    def key(self, schedule_id: str, start: int) -> str:
        return schedule_fired(self._queue_name, schedule_id, start)

    async def claim(self, schedule_id: str, now: datetime, interval_seconds: int | None) -> bool:
        """True for the one scheduler that may send this schedule in this period."""
        start = period_start(now, interval_seconds)
        keep = (interval_seconds or CRON_PERIOD_SECONDS) + KEEP_AFTER_PERIOD_SECONDS
        claimed = await self._redis.set(self.key(schedule_id, start), "1", nx=True, ex=keep)
        return bool(claimed)


@dataclass(frozen=True, slots=True)
class Sent:
    """The task a schedule sent last, and when: the schedules view reads its outcome."""

    task_id: str
    at: datetime


async def record_sent(redis: Redis, queue_name: str, schedule_id: str, sent: Sent) -> None:
    value = json.dumps({"task_id": sent.task_id, "at": sent.at.isoformat()})
    await redis.set(schedule_sent(queue_name, schedule_id), value, ex=SENT_KEPT_SECONDS)
