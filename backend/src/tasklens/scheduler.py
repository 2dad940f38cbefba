"""Entry point for `taskiq scheduler tasklens.scheduler:scheduler` (`tasklens scheduler`)."""

from __future__ import annotations

from taskiq import TaskiqScheduler

from tasklens.schedule_lease import FiringLease
from tasklens.schedules import FileScheduleSource
from tasklens.tracking.redis_connection import connect
from tasklens.worker import broker, settings

if settings.schedules_file is None:
    raise SystemExit(
        "tasklens: invalid setting TASKLENS_SCHEDULES_FILE: the scheduler needs a schedules "
        "file (see `tasklens/schedules.py` or the README)"
    )
assert settings.redis_url is not None  # worker.py refuses to start without it
lease = FiringLease(connect(settings.redis_url), settings.queue_name)
scheduler = TaskiqScheduler(
    broker, sources=[FileScheduleSource(settings.schedules_file, settings.queue_name, lease)]
)
