"""What waits and who works: queue depths per priority and the workers' heartbeats."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError, ResponseError

from tasklens.broker import DelayingInMemoryBroker
from tasklens.priorities import PRIORITY_ORDER, stream_for
from tasklens.runtime import Runtime
from tasklens.tracking.heartbeat import describe_self, known_workers
from tasklens.tracking.log_spill import spill_state
from tasklens.tracking.middleware import TaskLensMiddleware
from tasklens.tracking.redis_keys import LOST_MESSAGES, PAUSED_QUEUES

logger = logging.getLogger(__name__)

GROUP = "tasklens"


@dataclass(frozen=True, slots=True)
class QueueDepth:
    name: str
    stream: str
    depth: int  # waiting, not yet delivered to any worker
    in_flight: int  # delivered, not yet acknowledged
    paused: bool = False  # workers take nothing from it (queue_control.py)


async def queue_state(runtime: Runtime) -> tuple[list[QueueDepth], list[dict[str, Any]]]:
    middleware = next(m for m in runtime.broker.middlewares if isinstance(m, TaskLensMiddleware))
    if runtime.redis is None:  # embedded: this process is the only worker
        me = describe_self(middleware.worker_id, middleware.started_at, middleware.running_count())
        me["online"] = True
        me["last_seen"] = datetime.now(UTC).isoformat()
        assert isinstance(runtime.broker, DelayingInMemoryBroker)
        counts, paused = runtime.broker.depths(), runtime.broker.paused
        streams = [(p, stream_for(runtime.settings.queue_name, p)) for p in PRIORITY_ORDER]
        return [
            QueueDepth(p.value, s, *counts.get(s, (0, 0)), paused=s in paused) for p, s in streams
        ], [me]
    paused = {_text(s) for s in await runtime.redis.smembers(PAUSED_QUEUES)}
    depths = []
    for priority in PRIORITY_ORDER:
        stream = stream_for(runtime.settings.queue_name, priority)
        try:
            groups = await runtime.redis.xinfo_groups(stream)
        except ResponseError:  # the stream does not exist yet
            groups = []
        group = next((g for g in groups if _text(g["name"]) == GROUP), None)
        # No group (Redis lost it, e.g. restarted without persistence, and a send made the
        # stream again, until a worker declares the group anew): every message in it waits.
        waiting = int(group["lag"] or 0) if group else int(await runtime.redis.xlen(stream))
        depths.append(
            QueueDepth(
                priority.value,
                stream,
                waiting,
                int(group["pending"]) if group else 0,
                paused=stream in paused,
            )
        )
    return depths, await known_workers(runtime.redis)


async def lost_message_count(runtime: Runtime) -> int:
    """Rows the reaper closed because Redis no longer held their message (lost_messages.py)."""
    if runtime.redis is None:
        return 0
    return int(await runtime.redis.get(LOST_MESSAGES) or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def log_losses(runtime: Runtime) -> tuple[int, int]:
    """(lifecycle rows dropped, spilled batches not yet written to the database)."""
    if runtime.redis is None:
        return runtime.recorder.stats.rows_dropped, 0
    return await spill_state(runtime.redis)


async def rows_dropped(runtime: Runtime) -> int | None:
    """For the metrics, which must not fail with Redis: None when it cannot be read."""
    try:
        return (await log_losses(runtime))[0]
    except (OSError, RedisError) as exc:
        logger.warning("metrics: could not read the dropped rows count: %s", exc)
        return None
