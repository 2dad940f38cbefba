"""The buffer between a running task and the database.

`record()` is synchronous and O(1): it only appends the change. Hooks run between a task's
awaits, interleaved with the broker's own code, where building a change cost about three
times what it costs in a tight loop (measured in the throughput benchmark): so the hot
hooks hand over plain values with `record_later()`, and the change is built here.
A background loop, every `event_interval` (25 ms: the live feed stays live), builds and
merges the changes into the latest row state per task attempt and publishes them as events
in one XADD to the `tasklens:events` stream (event_stream.py); it writes the rows every
`write_interval` (100 ms, or as soon as `batch_size` rows wait, or after a tick with nothing
new) in one upsert: bigger batches cost the database less per row (measured: 135 µs/row in
batches of 25, 78 in 500).
With nothing recorded and nothing to write, the loop sleeps until the next change (an idle
worker spends no CPU on it) and publishes that one at once.
If the database is down, rows stay buffered and the loop retries with backoff; tasks never
wait. When more than `buffer_max` distinct rows are waiting (a long outage under load),
the oldest non-terminal rows are dropped first (a later state of theirs would replace them
anyway); drops are counted in `stats` and logged.
`written()` waits until what was recorded before it is committed, and has the loop write at
once: the embedded mode's API answers 202 only after the `pending` rows of what it accepted
are in the log (its queue is its memory, and would die with it unlogged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tasklens.database import create_engine
from tasklens.event_stream import EventStream, RedisEventStream
from tasklens.lifecycle import LifecycleChange
from tasklens.log_store import LogStore, PostgresLogStore, SqlAlchemyLogStore, is_bad_data
from tasklens.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RecorderStats:
    recorded: int = 0  # changes taken in by the flushes
    rows_written: int = 0
    flushes: int = 0
    write_failures: int = 0
    rows_dropped: int = 0
    rows_rejected: int = 0
    events_dropped: int = 0
    ticks: int = 0  # turns of the background loop


# A change to build at the flush: its builder and the plain values it takes.
ChangeToBuild = tuple[Callable[..., LifecycleChange], tuple[Any, ...]]


class NotWritten(Exception):
    """`written()` gave up: the rows stay buffered and are retried, but are not in the log."""


class LifecycleRecorder:
    def __init__(
        self,
        store: LogStore,
        bus: EventStream | None,
        *,
        event_interval: float = 0.025,
        write_interval: float = 0.1,
        batch_size: int = 500,
        buffer_max: int = 200_000,
        max_events_per_flush: int = 5_000,
    ) -> None:
        self.store = store
        self.bus = bus
        self.event_interval = event_interval
        self.write_interval = write_interval
        self.batch_size = batch_size
        self.buffer_max = buffer_max
        self.max_events_per_flush = max_events_per_flush
        self.stats = RecorderStats()
        self._rows: dict[tuple[str, int], LifecycleChange] = {}
        self._recorded: list[LifecycleChange | ChangeToBuild] = []  # in order, not yet merged
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._db_down_since: float | None = None
        self._stopping = False
        self._asleep = False  # the loop waits for a change, with no timeout
        self._waiting: list[asyncio.Future[None]] = []  # `written()` calls not yet merged
        self._covered: list[asyncio.Future[None]] = []  # ...whose changes are in `_rows`

    def record(self, change: LifecycleChange) -> None:
        self._recorded.append(change)
        if self._asleep or len(self._recorded) >= self.batch_size:
            self._wake.set()

    def record_later(self, build: Callable[..., LifecycleChange], *values: Any) -> None:
        """Record the change `build(*values)` makes, built at the flush: the values must be
        plain data the caller no longer changes."""
        self._recorded.append((build, values))
        if self._asleep or len(self._recorded) >= self.batch_size:
            self._wake.set()

    def _merge_recorded(self) -> list[LifecycleChange]:
        """Builds what was recorded since the last call and merges it into the rows; returns
        the changes in the order they happened, for the live events."""
        recorded, self._recorded = self._recorded, []
        if self._waiting:  # what they wait for is merged now: the next write covers them
            self._covered += self._waiting
            self._waiting = []
        self.stats.recorded += len(recorded)  # counted here: not a line more in the hooks
        changes: list[LifecycleChange] = []
        for item in recorded:
            if isinstance(item, LifecycleChange):
                changes.append(item)
                continue
            try:
                changes.append(item[0](*item[1]))
            except Exception:  # one bad change must not stop the loop that logs all the others
                self.stats.rows_rejected += 1
                logger.exception("lifecycle change of task %s could not be built", item[1][:1])
        rows = self._rows
        for change in changes:
            key = (change.task_id, change.attempt)
            previous = rows.get(key)
            rows[key] = change if previous is None else change.absorb(previous)
        if len(rows) > self.buffer_max:
            self._shed()
        return changes

    def _shed(self) -> None:
        excess = len(self._rows) - self.buffer_max
        victims = [k for k, c in self._rows.items() if not c.status.is_terminal][:excess]
        if len(victims) < excess:
            chosen = set(victims)
            victims += [k for k in self._rows if k not in chosen][: excess - len(victims)]
        for key in victims:
            del self._rows[key]
        self.stats.rows_dropped += len(victims)
        logger.error(
            "lifecycle buffer full (%d rows): dropped %d oldest rows", self.buffer_max, len(victims)
        )

    @property
    def backlog(self) -> int:
        """Rows waiting to be written (as of the last flush)."""
        return len(self._rows)

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="tasklens-recorder")

    async def stop(self, timeout: float = 10.0) -> None:
        """Flush what is buffered (bounded by `timeout`), then stop the loop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                logger.error("recorder stopped with %d rows unwritten", len(self._rows))
            self._task = None
        await self.store.close()
        if self.bus is not None:
            await self.bus.close()

    async def written(self, timeout: float) -> None:
        """Returns once everything recorded before this call is committed; raises
        NotWritten if the database has not taken it within `timeout`."""
        if self._task is None:  # no loop to do it (not started): write here
            await self.flush()
            if self._rows:
                raise NotWritten(f"{len(self._rows)} lifecycle rows could not be written")
            return
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(done)
        self._wake.set()
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            raise NotWritten(f"the lifecycle log was not written within {timeout:g} s") from None

    async def flush(self) -> None:
        """Publish and write everything buffered now (tests, shutdown)."""
        await self._merge_and_publish()
        await self._write_rows()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        retry_delay = self.write_interval
        next_write = loop.time() + self.write_interval
        while True:
            if self._asleep:
                await self._wake.wait()
                self._asleep = False
            else:
                with contextlib.suppress(TimeoutError):  # asyncio.timeout: no Task per wait
                    async with asyncio.timeout(self.event_interval):
                        await self._wake.wait()
            self._wake.clear()
            self.stats.ticks += 1
            merged = await self._merge_and_publish()
            # Nothing new for a tick: the tasks are done for now, so there is nothing to batch
            # the waiting rows with (the log shows the outcome at once). Not in a backoff.
            quiet = merged == 0 and self._db_down_since is None
            due = quiet or loop.time() >= next_write or len(self._rows) >= self.batch_size
            if self._covered and self._db_down_since is None:
                due = True  # someone waits for these rows (not in a backoff)
            ok = True
            if (self._rows or self._covered) and (due or self._stopping):
                ok = await self._write_rows()
                retry_delay = self.write_interval if ok else min(max(retry_delay * 2, 0.1), 5.0)
                next_write = loop.time() + retry_delay
            if self._stopping and (ok or not self._rows):
                await self._merge_and_publish()
                return
            # Idle (every row written, nothing new): no more ticks until `record()` wakes us.
            self._asleep = quiet and not self._rows and not self._recorded

    async def _merge_and_publish(self) -> int:
        changes = self._merge_recorded()
        if changes and self.bus is not None:
            await self._publish(changes)
        return len(changes)

    async def _write_rows(self) -> bool:
        covered, self._covered = self._covered, []
        if not self._rows:
            _settle(covered)
            return True
        batch, self._rows = self._rows, {}
        try:
            try:
                await self.store.upsert(list(batch.values()))
            except Exception as exc:
                if not is_bad_data(exc):
                    raise
                await self._write_apart(list(batch.values()), exc)
        except Exception as exc:
            self._requeue(batch)
            self._covered = covered + self._covered
            self.stats.write_failures += 1
            if self._db_down_since is None:
                self._db_down_since = asyncio.get_running_loop().time()
                logger.warning(
                    "lifecycle log write failed (%s); %d rows buffered, retrying",
                    exc,
                    len(self._rows),
                )
            return False
        if self._db_down_since is not None:
            down_for = asyncio.get_running_loop().time() - self._db_down_since
            logger.warning("lifecycle log writes recovered after %.1fs", down_for)
            self._db_down_since = None
        self.stats.flushes += 1
        self.stats.rows_written += len(batch)
        _settle(covered)
        return True

    async def _write_apart(self, changes: list[LifecycleChange], refused: Exception) -> None:
        """Halves a batch the database refused for its data until the bad rows stand alone,
        then logs and drops those: one bad row must not hold every later row back. Rows of
        halves already written may be written again on a retry; the upsert merges them."""
        if len(changes) == 1:
            self.stats.rows_rejected += 1
            change = changes[0]
            logger.error(
                "lifecycle row of task %s attempt %d (%s) refused by the database, dropped: %s",
                change.task_id,
                change.attempt,
                change.status.value,
                refused,
            )
            return
        middle = len(changes) // 2
        for half in (changes[:middle], changes[middle:]):
            try:
                await self.store.upsert(half)
            except Exception as exc:
                if not is_bad_data(exc):
                    raise
                await self._write_apart(half, exc)

    def _requeue(self, batch: dict[tuple[str, int], LifecycleChange]) -> None:
        """Put a failed batch back under anything recorded since (which is newer)."""
        for key, newer in self._rows.items():
            older = batch.get(key)
            batch[key] = newer if older is None else newer.absorb(older)
        self._rows = batch
        if len(self._rows) > self.buffer_max:
            self._shed()

    async def _publish(self, changes: Sequence[LifecycleChange]) -> None:
        assert self.bus is not None
        for start in range(0, len(changes), self.max_events_per_flush):
            chunk = changes[start : start + self.max_events_per_flush]
            try:
                await self.bus.publish_changes(chunk)
            except Exception as exc:
                self.stats.events_dropped += len(chunk)
                logger.warning("could not publish %d live events: %s", len(chunk), exc)


def _settle(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():  # one that timed out was cancelled
            waiter.set_result(None)


def build_recorder(
    database_url: str,
    redis_url: str | None,
    *,
    bus: EventStream | None = None,
    engine: AsyncEngine | None = None,
    event_interval: float = 0.025,
    write_interval: float = 0.1,
    batch_size: int = 500,
    buffer_max: int = 200_000,
) -> LifecycleRecorder:
    """A recorder for these URLs: Postgres via asyncpg, SQLite via SQLAlchemy."""
    store: LogStore
    if database_url.startswith("postgresql"):
        store = PostgresLogStore(database_url)
    else:
        store = SqlAlchemyLogStore(engine or create_engine(database_url))
    if bus is None and redis_url is not None:
        bus = RedisEventStream(redis_url)
    return LifecycleRecorder(
        store,
        bus,
        event_interval=event_interval,
        write_interval=write_interval,
        batch_size=batch_size,
        buffer_max=buffer_max,
    )


def recorder_for(
    settings: Settings, *, bus: EventStream | None = None, engine: AsyncEngine | None = None
) -> LifecycleRecorder:
    return build_recorder(
        settings.database_url,
        settings.redis_url,
        bus=bus,
        engine=engine,
        event_interval=settings.event_flush_interval_ms / 1000,
        write_interval=settings.log_write_interval_ms / 1000,
        batch_size=settings.log_batch_size,
        buffer_max=settings.log_buffer_max,
    )
