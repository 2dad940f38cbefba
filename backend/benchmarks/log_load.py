"""The `beside` arm's load: the writes a TaskLensMiddleware worker's recorder makes, made
from the benchmark's own process while a stock worker without middleware drains the queue.

Every task's `success` row is upserted onto its `pending` row once per write interval, with
the recorder's statement, and its live event is XADDed to the events stream once per event
interval, as the tasks finish. PostgreSQL and Redis then do the middleware arm's work on
the same machine, and the stock worker shares its cores with that work as the middleware's
worker does. The middleware arm against this one is what the middleware costs in its own
process; this one against stock taskiq-redis is what the log's servers cost a worker whose
cores they share. The rows and events are those `ran_change` builds for each message in
the stream, serialised before the run: during it, this process joins bytes and sends them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis

from tasklens.tracking.event_stream import EVENTS_PER_ENTRY, RETAINED_ENTRIES
from tasklens.tracking.lifecycle import ran_change
from tasklens.tracking.log_store import PostgresLogStore, _json_row
from tasklens.tracking.middleware import ENQUEUED_AT_LABEL
from tasklens.tracking.recorder import build_recorder
from tasklens.tracking.redis_keys import EVENTS_STREAM

# The intervals of the middleware's recorder (build_recorder's defaults).
_DEFAULTS = build_recorder.__kwdefaults__ or {}
EVENT_INTERVAL: float = _DEFAULTS["event_interval"]
WRITE_INTERVAL: float = _DEFAULTS["write_interval"]


def _joined(items: list[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


class LogLoad:
    """The rows and events of the tasks queued in a stream, sent as the tasks finish."""

    def __init__(self, rows: list[bytes], events: list[bytes]) -> None:
        self.rows = rows  # each task's row of the upsert's batch, as JSON
        self.events = events  # each task's event row, as JSON
        self.rows_written = self.events_published = 0

    @classmethod
    async def of_stream(cls, redis: Redis, stream: str) -> LogLoad:
        """The `success` (with its `running`) a TaskLensMiddleware worker would record for
        each message in `stream`, in the order a worker reads them. A stock taskiq-redis
        broker's stream is named after its queue, which the rows name."""
        worker = f"{socket.gethostname()}:0"
        rows: list[bytes] = []
        events: list[bytes] = []
        entries: Any = await redis.xrange(stream)  # redis-py's types allow None: never here
        for _, fields in entries:
            message = orjson.loads(fields[b"data"])
            enqueued = message["labels"].get(ENQUEUED_AT_LABEL)
            started = float(enqueued) + 1.0 if enqueued is not None else 0.0
            change = ran_change(
                message["task_id"],
                message["task_name"],
                1,
                started,
                started + 0.0001,
                0.1,
                None,
                worker,
                enqueued,
                {},
                stream,
            )
            rows.append(orjson.dumps(_json_row(change)))
            events.append(orjson.dumps(change.to_event_row()))
        return cls(rows, events)

    async def send(
        self, redis: Redis, pg: asyncpg.Connection, finished: Callable[[], Awaitable[int]]
    ) -> None:
        """Until every row is written: each event interval, the events of the tasks
        `finished()` says have ended since; each write interval, their rows."""
        loop = asyncio.get_running_loop()
        next_write = loop.time() + WRITE_INTERVAL
        while self.rows_written < len(self.rows):
            done = min(await finished(), len(self.events))
            for start in range(self.events_published, done, EVENTS_PER_ENTRY):
                chunk = self.events[start : min(start + EVENTS_PER_ENTRY, done)]
                await redis.xadd(EVENTS_STREAM, {b"c": _joined(chunk)}, maxlen=RETAINED_ENTRIES)
            self.events_published = max(self.events_published, done)
            if loop.time() >= next_write or done == len(self.rows):
                if done > self.rows_written:
                    batch = _joined(self.rows[self.rows_written : done]).decode()
                    await pg.execute(PostgresLogStore._SQL, batch, datetime.now(UTC))
                    self.rows_written = done
                next_write = loop.time() + WRITE_INTERVAL
            await asyncio.sleep(EVENT_INTERVAL)
