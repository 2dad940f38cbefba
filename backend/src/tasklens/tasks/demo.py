"""Built-in demo tasks, so a newcomer's dashboard comes alive with `tasklens demo`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from taskiq import TaskiqDepends

from tasklens.tracking.progress import Progress


async def quick(n: int = 0) -> dict[str, int]:
    await asyncio.sleep(random.uniform(0.01, 0.2))
    return {"n": n, "square": n * n}


async def slow(
    steps: int = 5, step_seconds: float = 0.5, progress: Progress = TaskiqDepends()
) -> dict[str, int]:
    for step in range(steps):
        progress(step / steps, f"step {step + 1} of {steps}")
        await asyncio.sleep(step_seconds)
    return {"steps": steps}


class DemoFailure(RuntimeError):
    """Raised on purpose so the dashboard has a traceback to show."""


def _parse_record(record: dict[str, Any]) -> int:
    return int(record["value"])


async def flaky(record_id: int = 0, failure_rate: float = 0.1) -> dict[str, int]:
    await asyncio.sleep(random.uniform(0.01, 0.1))
    if random.random() < failure_rate:
        try:
            _parse_record({"value": f"record-{record_id}"})
        except ValueError as exc:
            raise DemoFailure(f"could not import record {record_id}") from exc
    return {"record_id": record_id}


async def noop() -> None:
    """Does nothing: the benchmark's unit of work."""


TASKS: dict[str, Callable[..., Any]] = {
    "demo.quick": quick,
    "demo.slow": slow,
    "demo.flaky": flaky,
    "demo.noop": noop,
}
