"""Priority queues: one Redis stream per priority, read by workers strictly in order."""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    HIGH = "high"  # manual triggers
    DEFAULT = "default"
    LOW = "low"  # scheduled refreshes


PRIORITY_ORDER = (Priority.HIGH, Priority.DEFAULT, Priority.LOW)


def stream_for(queue_name: str, priority: Priority) -> str:
    return queue_name if priority is Priority.DEFAULT else f"{queue_name}:{priority.value}"
