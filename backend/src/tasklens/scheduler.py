"""Entry point for `taskiq scheduler tasklens.scheduler:scheduler` (`tasklens scheduler`)."""

from __future__ import annotations

from taskiq import TaskiqScheduler

from tasklens.schedules import FileScheduleSource
from tasklens.worker import broker, settings

if settings.schedules_file is None:
    raise SystemExit(
        "tasklens: invalid setting TASKLENS_SCHEDULES_FILE: the scheduler needs a schedules "
        "file (see `tasklens/schedules.py` or the README)"
    )
scheduler = TaskiqScheduler(
    broker, sources=[FileScheduleSource(settings.schedules_file, settings.queue_name)]
)
