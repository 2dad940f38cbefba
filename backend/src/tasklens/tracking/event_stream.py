"""Lifecycle events with ids, retained for a while so a reconnecting client can resume.

Every event gets an `"id"`: `<13-digit ms>-<6-digit seq>-<5-digit index>`, zero-padded so
that ids compare as plain strings in the order the events happened, across every process.

Distributed mode: the recorder XADDs each flush (one entry per ≤ 500 events) to the capped
Redis stream `tasklens:events` (MAXLEN ~ 10,000 entries); the id is the entry's stream id
plus the event's index in it, and every API process reads the stream (XREAD), so all of them
hand out the same ids. A recorder's entry holds its lifecycle changes as flat arrays
(`LifecycleChange.to_event_row`, field `c`, its time in Unix seconds), which the readers
turn into events (the time as RFC 3339 text): the worker's CPU goes to tasks. Other
publishers' entries hold the events (field `e`).
Embedded mode: the same ids from an in-memory counter, and a ring buffer of the last 10,000
events.

`replay(since)` returns the retained events after `since`, or None when `since` is garbled
or older than what is retained (or the gap is too big to replay): the client must then
refetch from the REST log. `latest(count)` returns the newest `count` retained events, so a
client that opens the dashboard starts with what just happened (the feed's backfill).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from tasklens.tracking.lifecycle import LifecycleChange, event_from_row
from tasklens.tracking.pubsub import InProcessPubSub
from tasklens.tracking.redis_connection import connect
from tasklens.tracking.redis_keys import EVENTS_STREAM

logger = logging.getLogger(__name__)

Event = dict[str, Any]

RETAINED_ENTRIES = 10_000
EVENTS_PER_ENTRY = 500
RETAINED_EVENTS = 10_000  # embedded ring buffer
MAX_REPLAY_EVENTS = 20_000  # a bigger gap is cheaper to refetch from the REST log
LATEST_ENTRIES_PER_READ = 32
_ID = re.compile(r"(\d{13})-(\d{6})-(\d{5})")


def event_id(ms: int, seq: int, index: int) -> str:
    return f"{ms:013d}-{seq:06d}-{index:05d}"


def parse_event_id(text: object) -> tuple[int, int, int] | None:
    match = _ID.fullmatch(text) if isinstance(text, str) else None
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


class EventStream(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...
    async def publish_changes(self, changes: Sequence[LifecycleChange]) -> None:
        """Publish each change as its `task_event`."""
        ...

    def subscribe(self, ready: asyncio.Event | None = None) -> AsyncIterator[list[Event]]:
        """Batches of events, each with its id, as they are published."""
        ...

    async def replay(self, since: str) -> list[Event] | None:
        """Retained events after `since`, oldest first; None: refetch from the log."""
        ...

    async def latest(self, count: int) -> list[Event]:
        """The newest `count` retained events (fewer when fewer are), oldest first."""
        ...

    async def close(self) -> None: ...


class InProcessEventStream:
    def __init__(self, retained: int = RETAINED_EVENTS) -> None:
        self._fanout: InProcessPubSub = InProcessPubSub()
        self._retained: deque[Event] = deque(maxlen=retained)
        self._ms = self._seq = 0

    async def publish(self, events: Sequence[Event]) -> None:
        ms = int(time.time() * 1000)
        if ms <= self._ms:  # same millisecond (or a clock step back): keep increasing
            ms, self._seq = self._ms, self._seq + 1
        else:
            self._seq = 0
        self._ms = ms
        stamped = [{**event, "id": event_id(ms, self._seq, i)} for i, event in enumerate(events)]
        self._retained.extend(stamped)
        await self._fanout.publish(stamped)

    async def publish_changes(self, changes: Sequence[LifecycleChange]) -> None:
        await self.publish([change.to_event() for change in changes])

    def subscribe(self, ready: asyncio.Event | None = None) -> AsyncIterator[list[Event]]:
        return self._fanout.subscribe(ready)

    async def replay(self, since: str) -> list[Event] | None:
        if parse_event_id(since) is None or not self._retained:
            return None
        if since < self._retained[0]["id"]:
            return None
        missed = [event for event in self._retained if event["id"] > since]
        return missed if len(missed) <= MAX_REPLAY_EVENTS else None

    async def latest(self, count: int) -> list[Event]:
        if count <= 0:
            return []
        newest = list(itertools.islice(reversed(self._retained), count))
        newest.reverse()
        return newest

    async def close(self) -> None:
        await self._fanout.close()


def _entry(entry_id: Any) -> tuple[int, int]:
    ms, _, seq = (entry_id.decode() if isinstance(entry_id, bytes) else entry_id).partition("-")
    return int(ms), int(seq)


def _decode(entry_id: Any, fields: Any) -> list[Event]:
    ms, seq = _entry(entry_id)
    events: list[Event]
    if b"c" in fields:
        events = [event_from_row(row) for row in orjson.loads(fields[b"c"])]
    else:
        events = orjson.loads(fields[b"e"])
    for index, event in enumerate(events):
        event["id"] = event_id(ms, seq, index)
    return events


class RedisEventStream:
    """One XADD per ≤ 500 events (pipelined), read back by every API process with XREAD."""

    def __init__(
        self, redis_url: str, key: str = EVENTS_STREAM, retained_entries: int = RETAINED_ENTRIES
    ) -> None:
        self._redis = connect(redis_url)
        self._url = redis_url
        self._key = key
        self._retained = retained_entries

    async def publish(self, events: Sequence[Event]) -> None:
        await self._add(b"e", events)

    async def publish_changes(self, changes: Sequence[LifecycleChange]) -> None:
        await self._add(b"c", [change.to_event_row() for change in changes])

    async def _add(self, field: bytes, items: Sequence[Any]) -> None:
        if len(items) <= EVENTS_PER_ENTRY:  # a flush's usual size: skip the pipeline's cost
            await self._redis.xadd(self._key, self._fields(field, items), maxlen=self._retained)
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(items), EVENTS_PER_ENTRY):
                chunk = items[start : start + EVENTS_PER_ENTRY]
                pipe.xadd(self._key, self._fields(field, chunk), maxlen=self._retained)
            await pipe.execute()

    @staticmethod
    def _fields(field: bytes, items: Sequence[Any]) -> dict[FieldT, EncodableT]:
        return {field: orjson.dumps(list(items), default=str)}

    async def subscribe(self, ready: asyncio.Event | None = None) -> AsyncIterator[list[Event]]:
        """Reads on from the newest entry at the start; after a lost connection, from the
        last entry read, so nothing published meanwhile is skipped."""
        client = connect(self._url, socket_timeout=None)
        last: str | None = None
        delay = 0.1
        try:
            while True:
                try:
                    if last is None:
                        newest: Any = await client.xrevrange(self._key, count=1)
                        last = "-".join(map(str, _entry(newest[0][0]))) if newest else "0-0"
                    if ready is not None:
                        ready.set()
                    read: Any = await client.xread({self._key: last}, count=100, block=1000)
                    delay = 0.1
                    for _, entries in read or []:
                        for entry_id, fields in entries:
                            last = "-".join(map(str, _entry(entry_id)))
                            yield _decode(entry_id, fields)
                except (OSError, RedisError) as exc:
                    logger.warning("event stream lost (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            await client.aclose()

    async def replay(self, since: str) -> list[Event] | None:
        parsed = parse_event_id(since)
        if parsed is None:
            return None
        oldest: Any = await self._redis.xrange(self._key, count=1)
        if not oldest or parsed[:2] < _entry(oldest[0][0]):
            return None  # trimmed (or Redis restarted) past the client's last event
        missed: list[Event] = []
        cursor = f"{parsed[0]}-{parsed[1]}"  # inclusive: the rest of that entry counts too
        while True:
            entries: Any = await self._redis.xrange(self._key, min=cursor, count=1000)
            for entry_id, fields in entries:
                missed += [e for e in _decode(entry_id, fields) if e["id"] > since]
            if len(missed) > MAX_REPLAY_EVENTS:
                return None
            if len(entries) < 1000:
                return missed
            cursor = "(" + "-".join(map(str, _entry(entries[-1][0])))

    async def latest(self, count: int) -> list[Event]:
        """Reads back entries newest first, as many per read as the entries read so far say
        are needed: an entry holds one flush, from one event (a quiet stream: `count` entries,
        a few reads) to EVENTS_PER_ENTRY (a busy one: one entry, one read), and an entry is
        decoded whole, so reading more than needed costs hundreds of events each."""
        newest: list[list[Event]] = []
        found = 0
        cursor = "+"
        while found < count:
            per_entry = max(1.0, found / len(newest)) if newest else float(count)
            wanted = min(LATEST_ENTRIES_PER_READ, math.ceil((count - found) / per_entry))
            entries: Any = await self._redis.xrevrange(self._key, max=cursor, count=wanted)
            for entry_id, fields in entries:
                events = _decode(entry_id, fields)
                newest.append(events)
                found += len(events)
            if len(entries) < wanted:  # the oldest retained entry is read
                break
            cursor = "(" + "-".join(map(str, _entry(entries[-1][0])))
        ordered = [event for events in reversed(newest) for event in events]
        return ordered[-count:] if count > 0 else []

    async def close(self) -> None:
        await self._redis.aclose()
