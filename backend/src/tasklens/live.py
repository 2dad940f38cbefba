"""Fan-out of lifecycle events to this process's WebSocket clients.

Each client has its own bounded buffer and sender task: a slow or dead client loses its
oldest events (and is told how many) instead of holding up anybody else.

A client that resumes (`?since=<event id>`) is connected first, so live events start
collecting in its buffer, then gets the retained events after its id put in front of them;
live ones it already got in the replay are skipped by id. Nothing between is lost, nothing
is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque

import orjson

from tasklens.event_bus import Event
from tasklens.event_stream import EventStream

logger = logging.getLogger(__name__)


# A frame with the id of the event it carries ("" for frames that are not events).
Frame = tuple[str, str]
RESYNC = json.dumps({"type": "resync"})


class LiveClient:
    def __init__(self, max_buffered: int) -> None:
        self._buffer: deque[Frame] = deque()
        self._max = max_buffered
        self._wake = asyncio.Event()
        self._replayed_up_to = ""
        self.dropped = 0

    def offer(self, frames: list[str] | list[Frame]) -> None:
        for frame in frames:
            if isinstance(frame, str):
                frame = ("", frame)
            elif frame[0] and frame[0] <= self._replayed_up_to:
                continue  # already sent in the replay
            if len(self._buffer) >= self._max:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(frame)
        self._wake.set()

    def resume(self, replayed: list[Event] | None) -> None:
        """Put the replay (or a resync notice, for None) before the live events buffered
        since this client connected, without the ones the replay already has."""
        head: list[Frame] = []  # the hello (frames that are not events) stays first
        while self._buffer and not self._buffer[0][0]:
            head.append(self._buffer.popleft())
        if replayed is None:
            head.append(("", RESYNC))
        elif replayed:
            self._replayed_up_to = str(replayed[-1]["id"])
            head += _frames(replayed)
            self._buffer = deque(f for f in self._buffer if f[0] > self._replayed_up_to)
        self._buffer.extendleft(reversed(head))
        self._wake.set()

    async def next_frames(self) -> list[str]:
        """Waits for frames; a drop notice comes first when events were lost."""
        await self._wake.wait()
        self._wake.clear()
        frames = [frame for _, frame in self._buffer]
        self._buffer.clear()
        if self.dropped:
            frames.insert(0, json.dumps({"type": "events_dropped", "count": self.dropped}))
            self.dropped = 0
        return frames


class LiveHub:
    def __init__(self, bus: EventStream, max_buffered_per_client: int = 1000) -> None:
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

    async def replay(self, since: str) -> list[Event] | None:
        try:
            return await self._bus.replay(since)
        except Exception as exc:  # Redis down: the client refetches from the log instead
            logger.warning("live events: replay failed (%s); asking for a resync", exc)
            return None

    def disconnect(self, client: LiveClient) -> None:
        self._clients.discard(client)

    def broadcast(self, events: list[Event]) -> None:
        frames = _frames(events)
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


def _frames(events: list[Event]) -> list[Frame]:
    return [
        (str(event.get("id", "")), orjson.dumps(event, default=str).decode()) for event in events
    ]
