"""Entry point for `taskiq scheduler tasklens.scheduler:scheduler` (`tasklens scheduler`)."""

from __future__ import annotations

from tasklens.process import schedules_scheduler
from tasklens.settings import get_settings

scheduler = schedules_scheduler(get_settings())
