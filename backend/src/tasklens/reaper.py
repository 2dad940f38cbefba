"""The reaper: closes log rows that no worker will ever finish.

A worker killed mid-task cannot write its task's final state. Its rows would stay `running`
(or `pending`, when it died before its first write) forever, so every TaskLens process
(API and worker, both modes) runs this loop every few seconds and closes, as `failed` with
the error "worker lost":

- `running` rows of a worker whose heartbeat stopped (heartbeat.py; in the embedded mode,
  of any process but this one, the only worker there is),
- `running` rows older than the longest a task may run (tasks are cut off at their timeout,
  so such a row has nobody behind it), unless the live heartbeat of the row's worker still
  lists the task: a foreign app's task carries no TaskLens timeout and may run for longer,
- non-terminal rows superseded by a later attempt of the same task (the broker redelivered
  the message: the attempt before it was lost).

An in-memory broker (the embedded mode) runs what it sends in the same process, so the
middleware stamps that process on the `pending` row too: the queue dies with the process,
and a `pending` row of another process is closed with the error "server stopped before it
ran" (and this process's own at a graceful stop, see broker.py).

With Redis streams, `pending` rows whose message Redis no longer holds (its data was lost)
are closed as "lost: message no longer in the queue" (lost_messages.py), less often and by
one process at a time.

With Redis the rules are fleet-wide (heartbeats, ages, attempts), so one process per fleet
runs the pass: the holder of a Redis lease (lease.py), which keeps it while it lives and which
another takes over within three intervals of its death. Without Redis (the embedded mode, one
process) that process runs it; a Redis that does not answer fails the pass (the heartbeats
cannot be read either), which is tried again next interval. The superseded rule
starts from the later attempts (`attempt > 1`, a partial index), so its cost follows the
redeliveries and retries in the log, not the size of a `pending` backlog.

Each pass is one conditional UPDATE per rule (`WHERE status = 'running' …`), so two
processes may run it at once (a lease handed over mid-pass): a row is closed once, by
whoever gets there first, and a late final write of a task that did finish still wins (a
terminal status may replace a terminal status; see log_store.py). Every closed row is also
broadcast as a live event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from taskiq import TaskiqMiddleware

from tasklens.lease import RedisLease
from tasklens.lost_messages import LOST_MESSAGE_ERROR, LostMessages
from tasklens.tracking.background import BackgroundTask
from tasklens.tracking.event_stream import EventStream
from tasklens.tracking.heartbeat import INTERVAL_SECONDS as HEARTBEAT_SECONDS
from tasklens.tracking.heartbeat import OFFLINE_AFTER_SECONDS
from tasklens.tracking.lifecycle import LifecycleChange, as_time
from tasklens.tracking.models import TaskExecutionLog, TaskStatus
from tasklens.tracking.redis_connection import connect
from tasklens.tracking.redis_keys import REAPER_LEASE_PREFIX, WORKERS

logger = logging.getLogger(__name__)

LOST_ERROR = "worker lost"
NEVER_RAN_ERROR = "server stopped before it ran"
REAP_EVERY_SECONDS = 5.0
# A stopping process hands the lease over at most this long: a Redis that does not answer
# must not hold up the stop, and the lease expires by itself anyway.
LEASE_RELEASE_TIMEOUT_SECONDS = 2.0
# A superseded row is left alone this long: its own worker may still be writing it.
SUPERSEDED_GRACE_SECONDS = 10.0
# Bounds one pass's look at `running` rows past the age limit (normally none).
MAX_TOO_OLD_ROWS = 10_000
# Lost rows closed per UPDATE: each batch's returned rows and live events are handled in a
# turn of the event loop of the process running the reaper (often an API process), so a
# large loss is closed in slices between requests rather than in one stall.
LOST_ROWS_PER_UPDATE = 500
# Two beats: a too-old row whose worker has no heartbeat at all waits this long, and a
# heartbeat older than this no longer vouches for the tasks it lists.
UNKNOWN_WORKER_GRACE_SECONDS = 2 * HEARTBEAT_SECONDS

_LOG: Any = TaskExecutionLog.__table__  # type: ignore[attr-defined]


def this_worker() -> str:
    """The `worker` column value of this process (the middleware's `host:pid`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Reaper:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_task_seconds: float,
        redis_url: str | None,
        events: EventStream | None = None,
        interval: float = REAP_EVERY_SECONDS,
        lost_messages: LostMessages | None = None,
        fleet: str = "tasklens",
    ) -> None:
        self._engine = engine
        self._max_task_seconds = max_task_seconds
        self._redis: Redis | None = connect(redis_url) if redis_url is not None else None
        # One reaper per deployment sharing Redis (named after its queue), kept by its holder:
        # the rows it saw without a heartbeat (`_unknown`) are only worth something if it
        # looks again.
        self._lease = (
            None
            if self._redis is None
            else RedisLease(self._redis, uuid.uuid4().hex, REAPER_LEASE_PREFIX + fleet)
        )
        self.passes = 0  # fleet-wide passes this process ran
        self._events = events
        self._interval = interval
        self._lost = lost_messages
        self._next_lost_check = 0.0
        self._unknown: dict[int, float] = {}  # too-old row id -> first seen without heartbeat
        self._background = BackgroundTask("tasklens-reaper")
        self._failing = False

    async def start(self) -> None:
        self._background.start(self._loop)

    async def stop(self) -> None:
        await self._background.stop()
        if self._lease is not None:
            with contextlib.suppress(Exception):  # it expires anyway: the next holder waits
                async with asyncio.timeout(LEASE_RELEASE_TIMEOUT_SECONDS):
                    await self._lease.release()
        if self._redis is not None:
            await self._redis.aclose()
        if self._lost is not None:
            await self._lost.close()

    async def _loop(self) -> None:
        while True:
            try:
                await self.reap()
                if self._failing:
                    logger.warning("reaper: working again")
                self._failing = False
            except Exception as exc:  # database or Redis down: try again next time
                if not self._failing:
                    logger.warning("reaper: pass failed (%s); retrying", exc)
                self._failing = True
            # Jitter: many processes do not all hit the database in the same instant.
            await asyncio.sleep(self._interval * random.uniform(0.8, 1.2))

    async def heartbeats(self) -> tuple[list[str], set[str], set[tuple[str, str]]]:
        """Workers whose heartbeat is older than OFFLINE_AFTER_SECONDS, the live ones, and the
        (worker, task id) pairs the ones that beat lately say they run (a killed worker's last
        list must not shield its tasks until it is declared dead). A worker missing from the
        hash is not declared dead (Redis may just have restarted): the age rule covers it."""
        if self._redis is None:
            return [], set(), set()
        now = time.time()
        dead: list[str] = []
        alive: set[str] = set()
        running: set[tuple[str, str]] = set()
        for worker_id, raw in (await self._redis.hgetall(WORKERS)).items():
            name = worker_id.decode() if isinstance(worker_id, bytes) else str(worker_id)
            with contextlib.suppress(ValueError, KeyError, TypeError):
                beat = json.loads(raw)
                silent = now - float(beat["last_seen"])
                if silent > OFFLINE_AFTER_SECONDS:
                    dead.append(name)
                    continue
                alive.add(name)
                if silent <= UNKNOWN_WORKER_GRACE_SECONDS:
                    running.update((name, str(task_id)) for task_id in beat.get("tasks") or ())
        return dead, alive, running

    async def reap(self) -> int:
        """One pass over the rules; returns how many rows it closed. Distributed, the rules
        are fleet-wide (heartbeats, ages, attempts), so only the lease's holder runs them; a
        Redis that does not answer fails the pass, as the heartbeats could not be read."""
        if self._lease is not None and not await self._lease.hold(self._interval * 3):
            self._unknown.clear()
            return await self._close_lost_messages()
        self.passes += 1
        now = datetime.now(UTC)
        running = _LOG.c.status == TaskStatus.RUNNING.value
        unclaimed: Any = sa.true()
        if self._redis is None:
            # Embedded: this process is the only worker, so another one's rows are orphans.
            whose: Any = sa.and_(_LOG.c.worker.is_not(None), _LOG.c.worker != this_worker())
        else:
            dead, alive, listed = await self.heartbeats()
            whose = _LOG.c.worker.in_(dead)
        too_old = sa.func.coalesce(_LOG.c.started_at, _LOG.c.created_at) < now - timedelta(
            seconds=self._max_task_seconds
        )
        later, retried = _LOG.alias("later"), _LOG.alias("retried")
        superseded = sa.and_(
            _LOG.c.status.in_([TaskStatus.PENDING.value, TaskStatus.RUNNING.value]),
            _LOG.c.updated_at < now - timedelta(seconds=SUPERSEDED_GRACE_SECONDS),
            # Driven from the later attempts (few; their own partial index), not from every
            # old `pending` row of a backlog.
            _LOG.c.task_id.in_(sa.select(retried.c.task_id).where(retried.c.attempt > 1)),
            sa.exists().where(later.c.task_id == _LOG.c.task_id, later.c.attempt > _LOG.c.attempt),
        )
        if self._redis is not None:
            unclaimed = await self._unclaimed(sa.and_(running, too_old), alive, listed)
        rules = [
            (sa.and_(running, whose), LOST_ERROR),
            (sa.and_(running, too_old, unclaimed), LOST_ERROR),
            (superseded, LOST_ERROR),
        ]
        if self._redis is None:
            queued = _LOG.c.status == TaskStatus.PENDING.value
            rules.append((sa.and_(queued, whose), NEVER_RAN_ERROR))
        closed = await self._close(rules, now)
        return closed + await self._close_lost_messages()

    async def _unclaimed(self, too_old: Any, alive: set[str], listed: set[tuple[str, str]]) -> Any:
        """Of the rows past the age limit, those whose worker's live heartbeat does not list
        them (a foreign app's task has no TaskLens timeout and may run longer: its heartbeat
        says it still does), or whose worker has had no heartbeat for a while (Redis lost the
        hash: a live worker writes it again within one beat)."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(_LOG.c.id, _LOG.c.worker, _LOG.c.task_id)
                    .where(too_old)
                    .limit(MAX_TOO_OLD_ROWS)
                )
            ).all()
        now = time.monotonic()
        unknown = {
            row.id: self._unknown.get(row.id, now) for row in rows if row.worker not in alive
        }
        self._unknown = unknown
        unclaimed = [
            row.id
            for row in rows
            if (row.worker in alive and (row.worker, row.task_id) not in listed)
            or (row.id in unknown and now - unknown[row.id] >= UNKNOWN_WORKER_GRACE_SECONDS)
        ]
        return _LOG.c.id.in_(unclaimed)

    async def _close_lost_messages(self) -> int:
        if self._lost is None or time.monotonic() < self._next_lost_check:
            return 0
        self._next_lost_check = time.monotonic() + self._lost.interval
        row_ids = await self._lost.confirmed(self._engine)
        closed = 0
        for start in range(0, len(row_ids), LOST_ROWS_PER_UPDATE):
            now = datetime.now(UTC)
            lost = self._lost.still_lost(row_ids[start : start + LOST_ROWS_PER_UPDATE], now)
            closed += await self._close([(lost, LOST_MESSAGE_ERROR)], now)
        if closed:
            await self._lost.count(closed)
        return closed

    async def close_own_queue(self) -> int:
        """Embedded mode, stopping: this process's in-memory queue goes with it, so its
        `pending` rows are closed now rather than at the next start."""
        own = sa.and_(_LOG.c.status == TaskStatus.PENDING.value, _LOG.c.worker == this_worker())
        return await self._close([(own, NEVER_RAN_ERROR)], datetime.now(UTC))

    async def _close(self, rules: Sequence[tuple[Any, str]], now: datetime) -> int:
        closed: list[tuple[Sequence[Any], str]] = []
        async with self._engine.begin() as conn:
            for condition, error in rules:
                result = await conn.execute(
                    sa.update(_LOG)
                    .where(condition)
                    .values(
                        status=TaskStatus.FAILED.value,
                        error_message=error,
                        completed_at=now,
                        updated_at=now,
                    )
                    .returning(_LOG.c.task_id, _LOG.c.attempt, _LOG.c.task_name, _LOG.c.worker)
                )
                closed.extend((row, error) for row in result.all())
        if closed:
            logger.warning("reaper: closed %d rows that nobody will finish as failed", len(closed))
            await self._announce(closed, now)
        return len(closed)

    async def _announce(self, rows: Sequence[tuple[Sequence[Any], str]], now: datetime) -> None:
        if self._events is None:
            return
        at = as_time(now)
        changes = [
            LifecycleChange(
                task_id=task_id,
                task_name=task_name,
                status=TaskStatus.FAILED,
                timestamp=at,
                attempt=attempt,
                worker=worker,
                completed_at=at,
                error_message=error,
            )
            for (task_id, attempt, task_name, worker), error in rows
        ]
        with contextlib.suppress(Exception):  # live events are best-effort; the log has it
            await self._events.publish_changes(changes)


class ReaperMiddleware(TaskiqMiddleware):
    """Runs a `Reaper` for as long as the broker runs, in API and worker processes alike."""

    def __init__(self, reaper: Reaper) -> None:
        super().__init__()
        self.reaper = reaper

    async def startup(self) -> None:
        await self.reaper.start()

    async def shutdown(self) -> None:
        await self.reaper.stop()
