"""Fan-out of lifecycle events to this process's WebSocket clients.

Each client has its own bounded buffer and sender task: a slow or dead client loses its
oldest events (and is told how many) instead of holding up anybody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque

import orjson

from tasklens.event_bus import Event, EventBus

logger = logging.getLogger(__name__)


class LiveClient:
    def __init__(self, max_buffered: int) -> None:
        self._buffer: deque[str] = deque()
        self._max = max_buffered
        self._wake = asyncio.Event()
        self.dropped = 0

    def offer(self, frames: list[str]) -> None:
        for frame in frames:
            if len(self._buffer) >= self._max:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(frame)
        self._wake.set()

    async def next_frames(self) -> list[str]:
        """Waits for frames; a drop notice comes first when events were lost."""
        await self._wake.wait()
        self._wake.clear()
        frames = list(self._buffer)
        self._buffer.clear()
        if self.dropped:
            frames.insert(0, json.dumps({"type": "events_dropped", "count": self.dropped}))
            self.dropped = 0
        return frames


class LiveHub:
    def __init__(self, bus: EventBus, max_buffered_per_client: int = 1000) -> None:
        self._bus = bus
        self._clients: set[LiveClient] = set()
        self._max = max_buffered_per_client
        self._task: asyncio.Task[None] | None = None

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def connect(self) -> LiveClient:
        client = LiveClient(self._max)
        self._clients.add(client)
        return client

    def disconnect(self, client: LiveClient) -> None:
        self._clients.discard(client)

    def broadcast(self, events: list[Event]) -> None:
        frames = [orjson.dumps(event, default=str).decode() for event in events]
        for client in list(self._clients):
            client.offer(frames)

    async def start(self, timeout: float = 5.0) -> None:
        """Returns once subscribed, so no event published after startup is missed."""
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._pump(ready), name="tasklens-live-hub")
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except TimeoutError:
            logger.warning("live events: not subscribed after %.0fs; still trying", timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _pump(self, ready: asyncio.Event) -> None:
        async for batch in self._bus.subscribe(ready):
            self.broadcast(batch)
