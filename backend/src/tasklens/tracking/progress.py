"""Progress reporting from inside a task, as a TaskIQ dependency.

async def analyse(url: str, progress: Progress = TaskiqDepends()) -> dict:
    progress(0.1, "cloning")
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from taskiq import Context, TaskiqDepends

from tasklens.tracking.middleware import TaskLensMiddleware


class Progress:
    def __init__(self, context: Annotated[Context, TaskiqDepends()]) -> None:
        self._message = context.message
        self._middleware = next(
            (m for m in context.broker.middlewares if isinstance(m, TaskLensMiddleware)), None
        )

    def started(self) -> None:
        """For tasks labelled `tasklens_deferred_start`: the work begins now."""
        if self._middleware is not None:
            self._middleware.record_start(self._message)

    def ended(self) -> None:
        """The work is over (the task still has to hand something on): its end is now."""
        if self._middleware is not None:
            self._middleware.record_end(self._message)

    def __call__(self, fraction: float, note: str | None = None) -> None:
        """Reports progress; also where a cancelled task stops (CPU-bound work included)."""
        if self._middleware is None:
            return
        if self._middleware.is_cancelled(self._message.task_id):
            raise asyncio.CancelledError("cancelled by an operator")
        self._middleware.record_progress(self._message, fraction, note)
