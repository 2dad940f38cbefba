"""TaskLens's own tasks, registered on a broker by `register_tasks`."""

from __future__ import annotations

from taskiq import AsyncBroker

from tasklens.tasks import analyses, demo
from tasklens.tasks.analyses import AnalysisServices


def register_tasks(broker: AsyncBroker, services: AnalysisServices) -> None:
    broker.state.tasklens_services = services
    settings = services.settings
    timeout = settings.task_timeout_seconds
    for name, func in demo.TASKS.items():
        broker.register_task(func, task_name=name, timeout=timeout)
    for name, func in analyses.TASKS.items():
        broker.register_task(
            func,
            task_name=name,
            timeout=settings.longest_task_seconds,  # may first wait for its subject's slot
            retry_on_error=True,  # transient failures are retried (broker.py)
            tasklens_deferred_start=1,  # `running` once it has the slot
        )
    for name, func in analyses.SCHEDULER_TASKS.items():
        broker.register_task(func, task_name=name, timeout=timeout)
