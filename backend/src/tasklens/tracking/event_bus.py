"""Live lifecycle events between processes.

Embedded mode: an in-process fan-out. Distributed mode: Redis pub/sub, so every API process
hears what every worker publishes. Events are best-effort (the log is the truth): a batch
that cannot be published is dropped with a warning, never retried at the task's expense.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tasklens.tracking.redis_connection import connect

logger = logging.getLogger(__name__)

CHANNEL = "tasklens:events"
Event = dict[str, Any]


class EventBus(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...
    def subscribe(self, ready: asyncio.Event | None = None) -> AsyncIterator[list[Event]]:
        """Batches as they are published; `ready` is set once the subscription is live."""
        ...

    async def close(self) -> None: ...


class InProcessEventBus:
    def __init__(self, max_queued_batches: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[list[Event]]] = set()
        self._max = max_queued_batches

    async def publish(self, events: Sequence[Event]) -> None:
        batch = list(events)
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(batch)

    async def subscribe(self, ready: asyncio.Event | None = None) -> AsyncIterator[list[Event]]:
        queue: asyncio.Queue[list[Event]] = asyncio.Queue(self._max)
        self._subscribers.add(queue)
        if ready is not None:
            ready.set()
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)

    async def close(self) -> None:
        self._subscribers.clear()


class RedisEventBus:
    """One PUBLISH per recorder flush, carrying the whole batch as a JSON array."""

    def __init__(self, redis_url: str, channel: str = CHANNEL) -> None:
        self._redis: Redis = connect(redis_url, health_check_interval=15)
        self._url = redis_url
        self._channel = channel

    async def publish(self, events: Sequence[Event]) -> None:
        await self._redis.publish(self._channel, orjson.dumps(list(events), default=str))

    async def subscribe(self, ready: asyncio.Event | None = None) -> AsyncIterator[list[Event]]:
        """Yields batches forever, resubscribing with backoff when Redis goes away."""
        delay = 0.1
        while True:
            client: Redis = connect(self._url, socket_timeout=None)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if ready is not None:
                    ready.set()
                delay = 0.1
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    yield orjson.loads(message["data"])
            except (OSError, RedisError) as exc:
                logger.warning("event subscription lost (%s); retrying in %.1fs", exc, delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        await self._redis.aclose()
