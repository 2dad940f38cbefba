"""TaskLens's own tasks, registered on a broker by `register_tasks`."""

from __future__ import annotations

from taskiq import AsyncBroker

from tasklens.tasks import demo


def register_tasks(broker: AsyncBroker) -> None:
    for name, func in demo.TASKS.items():
        broker.register_task(func, task_name=name)
