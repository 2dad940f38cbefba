"""Fire-and-forget batches of JSON messages to every process listening on a channel.

Distributed mode: Redis pub/sub, which keeps nothing for a listener that is away; embedded
mode: an in-process fan-out. It carries the cancel control channel (`cancellation.py`), and
the in-process one fans out the embedded event stream (`event_stream.py`). Lifecycle events
between processes go through the Redis stream of `event_stream.py`, never through here.
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
# How long a subscriber's read waits for a message before it asks again.
POLL_SECONDS = 1.0

Message = dict[str, Any]


class PubSub(Protocol):
    async def publish(self, messages: Sequence[Message]) -> None: ...
    def subscribe(self, ready: asyncio.Event | None = None) -> AsyncIterator[list[Message]]:
        """Batches as they are published; `ready` is set once the subscription is live."""
        ...

    async def close(self) -> None: ...


class InProcessPubSub:
    def __init__(self, max_queued_batches: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[list[Message]]] = set()
        self._max = max_queued_batches

    async def publish(self, messages: Sequence[Message]) -> None:
        batch = list(messages)
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(batch)

    async def subscribe(self, ready: asyncio.Event | None = None) -> AsyncIterator[list[Message]]:
        queue: asyncio.Queue[list[Message]] = asyncio.Queue(self._max)
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


class RedisPubSub:
    """One PUBLISH per batch, carrying the whole batch as a JSON array."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self._redis: Redis = connect(redis_url, health_check_interval=15)
        self._url = redis_url
        self._channel = channel

    async def publish(self, messages: Sequence[Message]) -> None:
        await self._redis.publish(self._channel, orjson.dumps(list(messages), default=str))

    async def subscribe(self, ready: asyncio.Event | None = None) -> AsyncIterator[list[Message]]:
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
                    message = await pubsub.get_message(timeout=POLL_SECONDS)
                    if message is None:
                        continue
                    yield orjson.loads(message["data"])
            except (OSError, RedisError) as exc:
                logger.warning(
                    "subscription to %s lost (%s); retrying in %.1fs", self._channel, exc, delay
                )
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        await self._redis.aclose()
