"""Lifecycle rows the database could not take, kept in Redis until it can.

While a recorder's writes to the database fail, it XADDs each batch of rows it could not
write to the stream `tasklens:unwritten` (one pipeline per flush, never one command per
task) and forgets them: a worker killed during a database outage loses nothing it had
recorded, and its memory no longer grows with the outage.

Every recorder with Redis (API and worker processes alike) drains the stream while its own
writes succeed: it reads entries through the consumer group `tasklens-drain`, upserts their
rows and only then acknowledges and deletes the entries. Two drainers never get the same
entry; one killed mid-drain leaves its entries pending in the group, and another claims them
once they have been idle for `CLAIM_IDLE_MS`. Writing a row twice is harmless: the upsert's
merge rule (log_store.py) lets the later and more final state win.

Rows the recorder had to drop (the database and Redis both failing, memory full) are
counted in `tasklens:log:rows_dropped`, which /health/queue and the metrics report.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
from redis.exceptions import ResponseError

from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.models import TaskStatus
from tasklens.tracking.redis_connection import connect
from tasklens.tracking.redis_keys import LOG_ROWS_DROPPED, LOG_SPILL

logger = logging.getLogger(__name__)

DRAIN_GROUP = "tasklens-drain"
ROWS_PER_ENTRY = 500
ENTRIES_PER_DRAIN = 10  # one upsert: keeps the recorder waiting for the connection briefly
# An entry a drainer took but did not finish for this long: the drainer is gone.
CLAIM_IDLE_MS = 30_000
_TIMES = ("timestamp", "created_at", "started_at", "completed_at", "run_at")


def spill_row(change: LifecycleChange) -> dict[str, Any]:
    """Every field of the change: the row it stands for is rebuilt exactly from it."""
    return {f.name: getattr(change, f.name) for f in dataclasses.fields(change)}


def change_from_spill(row: dict[str, Any]) -> LifecycleChange:
    for name in _TIMES:  # text in an entry an earlier release spilled: its datetimes
        if isinstance(moment := row.get(name), str):
            row[name] = as_time(datetime.fromisoformat(moment))
    row["status"] = TaskStatus(row["status"])
    return LifecycleChange(**row)


def merged(changes: Sequence[LifecycleChange]) -> list[LifecycleChange]:
    """One row per task attempt, the later and more final state winning: one upsert
    statement may not touch a row twice."""
    rows: dict[tuple[str, int], LifecycleChange] = {}
    for change in changes:
        key = (change.task_id, change.attempt)
        previous = rows.get(key)
        rows[key] = change if previous is None else change.absorb(previous)
    return list(rows.values())


class LogSpill:
    def __init__(
        self, redis_url: str, key: str = LOG_SPILL, claim_idle_ms: int = CLAIM_IDLE_MS
    ) -> None:
        self._redis = connect(redis_url)
        self._key = key
        self._claim_idle_ms = claim_idle_ms
        self._consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._group_ready = False

    async def spill(self, changes: Sequence[LifecycleChange], dropped: int = 0) -> None:
        """All or nothing (MULTI): the caller keeps the rows unless this returns."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for start in range(0, len(changes), ROWS_PER_ENTRY):
                chunk = [spill_row(c) for c in changes[start : start + ROWS_PER_ENTRY]]
                pipe.xadd(self._key, {b"r": orjson.dumps(chunk, default=str)})
            if dropped:
                pipe.incrby(LOG_ROWS_DROPPED, dropped)
            await pipe.execute()

    async def count_dropped(self, dropped: int) -> None:
        await self._redis.incrby(LOG_ROWS_DROPPED, dropped)

    async def drain(self, write: Callable[[list[LifecycleChange]], Awaitable[None]]) -> int:
        """Writes one batch of spilled rows with `write`; returns how many rows it wrote (0:
        nothing to drain). Entries are acknowledged and deleted only after the write."""
        if not self._group_ready:
            try:
                await self._redis.xgroup_create(self._key, DRAIN_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._group_ready = True
        try:
            entries = await self._take()
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis restarted without persistence
                self._group_ready = False
            raise
        if not entries:
            return 0
        changes = [
            change_from_spill(row) for _, fields in entries for row in orjson.loads(fields[b"r"])
        ]
        rows = merged(changes)
        await write(rows)
        ids = [entry_id for entry_id, _ in entries]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._key, DRAIN_GROUP, *ids)
            pipe.xdel(self._key, *ids)
            await pipe.execute()
        return len(rows)

    async def _take(self) -> list[tuple[Any, Any]]:
        """This drainer's own unfinished entries first, then those of a drainer gone
        silent, then new ones."""
        for start in ("0", None):
            if start is None:
                claimed: Any = await self._redis.xautoclaim(
                    self._key,
                    DRAIN_GROUP,
                    self._consumer,
                    self._claim_idle_ms,
                    count=ENTRIES_PER_DRAIN,
                )
                found = [(i, f) for i, f in claimed[1] if f]
            else:
                read: Any = await self._redis.xreadgroup(
                    DRAIN_GROUP, self._consumer, {self._key: start}, count=ENTRIES_PER_DRAIN
                )
                found = [(i, f) for _, items in read or [] for i, f in items if f]
            if found:
                return found
        read = await self._redis.xreadgroup(
            DRAIN_GROUP, self._consumer, {self._key: ">"}, count=ENTRIES_PER_DRAIN
        )
        return [(i, f) for _, items in read or [] for i, f in items if f]

    async def close(self) -> None:
        await self._redis.aclose()


async def spill_state(redis: Any) -> tuple[int, int]:
    """(rows dropped since Redis started, spilled entries not yet drained)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.get(LOG_ROWS_DROPPED)
        pipe.xlen(LOG_SPILL)
        dropped, entries = await pipe.execute()
    return int(dropped or 0), int(entries or 0)
