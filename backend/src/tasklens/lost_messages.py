"""Lost messages: `pending` rows whose message Redis no longer holds.

Redis without persistence (a crash without AOF, a `FLUSHDB`) can lose the queue while the log
still says `pending` for every message it held: nobody would ever run or close those rows. So,
one process at a time (a Redis lease), the reaper reads every place where one of TaskLens's
messages can be while its row says `pending`, in the order a message moves through them, so
that one moving during the read is found in the next place rather than missed:

1. the delayed set: retries waiting out their delay, analyses deferred for a subject slot,
   rescheduled ones;
2. each priority stream past its consumer group's last delivery (the whole stream when the
   group is gone), which includes scheduled kicks and handed-back messages;
3. each stream's pending entries list: delivered and not acknowledged (running, prefetched,
   waiting for a slot, or held by a dead worker until another one reclaims it);
4. a live worker's memory: what it was delivered and has not acknowledged, listed in its
   heartbeat (after a loss, the only place left of the messages it had prefetched: they run).

A row is closed as `failed` "lost: message no longer in the queue" only when its queue is
one of TaskLens's streams (a foreign broker's queue is not ours to judge), it is older than a
grace (its send may be in flight, or the worker's `running` write still in a buffer), no
message of its task was found in two reads at least a heartbeat apart (a message moving
backwards, a retry being re-sent, a delivery newer than the last heartbeat, is missed at most
once), and it is still `pending` at the UPDATE. The rows are asked for first: with none older
than the grace (a healthy queue) no message is read. The work is bounded: past
`MAX_MESSAGES_READ` queued messages, or a worker holding more than its heartbeat lists, the
check is skipped (nothing is closed), and at most `MAX_ROWS_CHECKED` rows are looked at per
pass, in turn.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.ext.asyncio import AsyncEngine

from tasklens.lease import RedisLease
from tasklens.tracking.heartbeat import INTERVAL_SECONDS as HEARTBEAT_SECONDS
from tasklens.tracking.heartbeat import held_task_ids
from tasklens.tracking.log_spill import spill_state
from tasklens.tracking.models import TaskExecutionLog, TaskStatus
from tasklens.tracking.redis_connection import connect
from tasklens.tracking.redis_keys import LOST_MESSAGES, LOST_MESSAGES_LEASE_PREFIX

logger = logging.getLogger(__name__)

LOST_MESSAGE_ERROR = "lost: message no longer in the queue"
# A younger row may have its send in flight or its worker's `running` write still buffered.
GRACE_SECONDS = 30.0
MAX_MESSAGES_READ = 100_000
MAX_ROWS_CHECKED = 10_000
# Two looks at least two heartbeats apart: a heartbeat lists a worker's held messages.
CONFIRM_AFTER_SECONDS = 2 * HEARTBEAT_SECONDS
# Messages per read: each read's reply is parsed in one turn of the event loop.
READ_BATCH = 250

_LOG: Any = TaskExecutionLog.__table__  # type: ignore[attr-defined]


class TooManyMessages(Exception):
    """More queued messages than one check may read."""


class _Reading:
    """The task ids found so far, with the count of messages read against the budget."""

    def __init__(self, streams: Sequence[str], budget: int) -> None:
        self.streams = set(streams)
        self.task_ids: set[str] = set()
        self.budget = budget

    def add(self, data: Any) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise TooManyMessages
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
            task_id = orjson.loads(data).get("task_id")
            if isinstance(task_id, str):
                self.task_ids.add(task_id)


async def queued_task_ids(
    redis: Redis,
    streams: Sequence[str],
    group: str,
    delayed_key: str,
    budget: int = MAX_MESSAGES_READ,
) -> set[str]:
    """The ids of the tasks with a message in the delayed set, in a stream not yet delivered,
    or delivered and not acknowledged. Raises TooManyMessages past `budget` messages."""
    reading = _Reading(streams, budget)
    if await redis.zcard(delayed_key) > budget:
        raise TooManyMessages
    members: Any = await redis.zrange(delayed_key, 0, -1)
    for member in members:  # one read: the mover removes some
        name, _, data = bytes(member).partition(b"\0")
        if name.decode(errors="replace") in reading.streams:
            reading.add(data)
    for stream in streams:
        try:
            groups: Any = await redis.xinfo_groups(stream)
        except ResponseError:  # no such stream: nothing queued there
            continue
        ours = next((g for g in groups if _text(g["name"]) == group), None)
        start = "-" if ours is None else "(" + _text(ours["last-delivered-id"])
        while True:  # not yet delivered (all of it when the group is gone)
            entries: Any = await redis.xrange(stream, min=start, max="+", count=READ_BATCH)
            for _entry_id, fields in entries:
                reading.add(fields.get(b"data"))
            if len(entries) < READ_BATCH:
                break
            start = "(" + _text(entries[-1][0])
        if ours is not None:
            await _read_pending(redis, stream, group, reading)
    return reading.task_ids


async def _read_pending(redis: Redis, stream: str, group: str, reading: _Reading) -> None:
    start = "-"
    while True:
        pending: Any = await redis.xpending_range(
            stream, group, min=start, max="+", count=READ_BATCH
        )
        if not pending:
            return
        async with redis.pipeline(transaction=False) as pipe:
            for entry in pending:
                message_id = entry["message_id"]
                pipe.xrange(stream, min=message_id, max=message_id, count=1)
            for found in await pipe.execute():
                for _entry_id, fields in found:  # none when trimmed from the stream
                    reading.add(fields.get(b"data"))
        if len(pending) < READ_BATCH:
            return
        start = "(" + _text(pending[-1]["message_id"])


class LostMessages:
    """Finds `pending` rows of TaskLens's streams whose message is gone; the reaper closes
    them. Runs in whichever process holds the lease, every `interval` seconds at most."""

    def __init__(
        self,
        redis_url: str,
        *,
        streams: Sequence[str],
        group: str,
        delayed_key: str,
        interval: float,
        grace: float = GRACE_SECONDS,
        confirm_after: float = CONFIRM_AFTER_SECONDS,
    ) -> None:
        self._redis: Redis = connect(redis_url)
        self.streams = list(streams)
        self._group = group
        self._delayed_key = delayed_key
        self.interval = interval
        self.grace = grace
        self._confirm_after = confirm_after
        # One lease per deployment sharing Redis (named after its first queue), kept by its
        # holder: the suspects it remembers are only worth something if it reads again.
        self._lease = RedisLease(
            self._redis, uuid.uuid4().hex, LOST_MESSAGES_LEASE_PREFIX + self.streams[0]
        )
        self._suspects: dict[int, float] = {}  # row id -> when its message was first missed
        self._after: tuple[datetime, int] | None = None  # where the next window of rows starts
        self._too_many = False
        self._last_look = float("-inf")

    async def close(self) -> None:
        await self._redis.aclose()

    async def confirmed(self, engine: AsyncEngine) -> list[int]:
        """Ids of the rows whose message was missing now and at the previous look, at
        least `confirm_after` seconds before. Suspects of a look long ago (the database or
        Redis was away since: a worker's buffered writes are about to land) count for nothing."""
        started = time.monotonic()
        if started - self._last_look > self._suspects_keep:
            self._suspects.clear()
        self._last_look = started
        try:
            return await self._look(engine)
        except BaseException:
            self._suspects.clear()
            raise

    @property
    def _suspects_keep(self) -> float:
        """How long suspects are worth something without a look, and so how long the holder
        keeps the lease between two looks. Not `interval` alone: the reaper looks once a pass,
        which may be less often (a short TASKLENS_LOST_CHECK_INTERVAL_SECONDS); a lease that
        lapsed between looks went to another process, whose first look only suspects, and
        back again: no row was ever confirmed."""
        return 3 * max(self.interval, self._confirm_after)

    async def _look(self, engine: AsyncEngine) -> list[int]:
        if not await self._lease.hold(self._suspects_keep):
            self._suspects.clear()
            return []
        if (await spill_state(self._redis))[1]:
            # Rows spilled during a database outage are still to be written: a message was
            # acknowledged once its final row was in the spill, so its row may say `pending`
            # until the drain writes it (log_spill.py). Judge nothing until then.
            self._suspects.clear()
            return []
        # The rows first: with none old enough to judge (a healthy queue), the messages are
        # not read at all; reading them means parsing every queued message on this process's
        # event loop, in whichever process holds the lease (often an API process).
        rows = await self._candidates(engine)
        if not rows:
            self._suspects.clear()
            return []
        try:
            present = await queued_task_ids(
                self._redis, self.streams, self._group, self._delayed_key
            )
            # Messages delivered before the loss live on in their worker's memory, and run.
            held = await held_task_ids(self._redis)
            if held is None:
                raise TooManyMessages
            present |= held
        except TooManyMessages:
            if not self._too_many:
                logger.warning(
                    "reaper: more than %d queued messages; lost messages are not looked for",
                    MAX_MESSAGES_READ,
                )
            self._too_many = True
            self._suspects.clear()
            return []
        self._too_many = False
        now = time.monotonic()
        missing = {
            row_id: self._suspects.get(row_id, now)
            for row_id, task_id in rows
            if task_id not in present
        }
        confirmed = sorted(
            row_id
            for row_id, first in missing.items()
            if row_id in self._suspects and now - first >= self._confirm_after
        )
        for row_id in confirmed:
            del missing[row_id]
        self._suspects = missing
        return confirmed

    def still_lost(self, row_ids: Sequence[int], now: datetime) -> Any:
        """The conditional UPDATE's WHERE: the row is still `pending` and still old."""
        return sa.and_(
            _LOG.c.id.in_(row_ids),
            _LOG.c.status == TaskStatus.PENDING.value,
            _LOG.c.updated_at < now - timedelta(seconds=self.grace),
        )

    async def count(self, closed: int) -> None:
        """Shown on /health/queue: how many rows were closed as lost."""
        if closed:
            with contextlib.suppress(Exception):  # a counter; the rows say it anyway
                await self._redis.incrby(LOST_MESSAGES, closed)

    async def _candidates(self, engine: AsyncEngine) -> list[tuple[int, str]]:
        """Old `pending` rows of our streams: a window of them (the next one each time, so a
        long legitimate backlog does not hide the rest) and the previous check's suspects."""
        old = datetime.now(UTC) - timedelta(seconds=self.grace)
        ours = sa.and_(
            _LOG.c.status == TaskStatus.PENDING.value,
            _LOG.c.queue.in_(self.streams),
            _LOG.c.created_at < old,
            _LOG.c.updated_at < old,
        )
        window = sa.select(_LOG.c.id, _LOG.c.task_id, _LOG.c.created_at).where(ours)
        if self._after is not None:
            window = window.where(sa.tuple_(_LOG.c.created_at, _LOG.c.id) > self._after)
        window = window.order_by(_LOG.c.created_at, _LOG.c.id).limit(MAX_ROWS_CHECKED)
        async with engine.connect() as conn:
            rows = (await conn.execute(window)).all()
            suspects: list[Any] = []
            if self._suspects:
                suspects = list(
                    (
                        await conn.execute(
                            sa.select(_LOG.c.id, _LOG.c.task_id).where(
                                ours, _LOG.c.id.in_(sorted(self._suspects))
                            )
                        )
                    ).all()
                )
        self._after = (rows[-1].created_at, rows[-1].id) if len(rows) == MAX_ROWS_CHECKED else None
        return [(row.id, row.task_id) for row in [*rows, *suspects]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
