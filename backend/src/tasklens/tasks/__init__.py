"""TaskLens's own tasks, registered on a broker by `register_tasks`."""

from __future__ import annotations

from taskiq import AsyncBroker

from tasklens.settings import Settings
from tasklens.tasks import analyses, demo


def register_tasks(broker: AsyncBroker, settings: Settings) -> None:
    broker.state.tasklens_settings = settings
    for name, func in {**demo.TASKS, **analyses.TASKS}.items():
        broker.register_task(func, task_name=name, timeout=settings.task_timeout_seconds)
