"""A lifecycle change: what the middleware saw happen to one attempt of one task.

Changes are both broadcast as live events (every one) and merged into log rows (only the
latest state per task attempt reaches the database, which is what makes batching cheap).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from tasklens.models import TaskStatus

MAX_JSON_CHARS = 64_000


@dataclass(slots=True)
class LifecycleChange:
    task_id: str
    task_name: str
    status: TaskStatus
    timestamp: datetime
    attempt: int = 1
    created_at: datetime | None = None
    params: Any = None
    queue: str | None = None
    worker: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    result: Any = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float | None = None
    error_message: str | None = None
    error_traceback: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.task_id, self.attempt)

    def merged_with(self, newer: LifecycleChange) -> LifecycleChange:
        """The row state after `newer`: status never goes back, known fields are kept."""
        status = newer.status if newer.status.rank >= self.status.rank else self.status
        merged = LifecycleChange(task_id=self.task_id, task_name=self.task_name,
                                 status=status, timestamp=newer.timestamp, attempt=self.attempt)
        for f in _MERGED_FIELDS:
            value = getattr(newer, f)
            setattr(merged, f, value if value is not None else getattr(self, f))
        merged.created_at = self.created_at or newer.created_at
        return merged

    def to_event(self) -> dict[str, Any]:
        return {
            "type": "task_event",
            "task_name": self.task_name,
            "status": self.status.value,
            "timestamp": self.timestamp.isoformat(),
            "data": {
                "task_id": self.task_id,
                "attempt": self.attempt,
                "duration_ms": self.duration_ms,
                "error_message": self.error_message,
                "params": self.params,
                "progress": self.progress,
                "progress_message": self.progress_message,
                "queue": self.queue,
                "worker": self.worker,
            },
        }


_MERGED_FIELDS = tuple(
    f.name for f in fields(LifecycleChange)
    if f.name not in {"task_id", "task_name", "status", "timestamp", "attempt", "created_at"}
)


def json_safe(value: Any) -> Any:
    """A JSON-storable copy of a task's params or result, cut short when huge."""
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, str) and len(value) > MAX_JSON_CHARS:
            return value[:MAX_JSON_CHARS] + "…"
        return value
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = json.dumps(repr(value))
    if len(text) > MAX_JSON_CHARS:
        return {"truncated": True, "preview": text[:MAX_JSON_CHARS]}
    return json.loads(text)
