"""TaskLens's own tasks, registered on a broker by `register_tasks`."""

from __future__ import annotations

from taskiq import AsyncBroker

from tasklens.tasks import analyses, demo
from tasklens.tasks.analyses import AnalysisServices


def register_tasks(broker: AsyncBroker, services: AnalysisServices) -> None:
    broker.state.tasklens_services = services
    settings = services.settings
    for name, func in {**demo.TASKS, **analyses.TASKS}.items():
        broker.register_task(func, task_name=name, timeout=settings.task_timeout_seconds)
