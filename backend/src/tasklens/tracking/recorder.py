"""The buffer between a running task and the database.

`record()` is synchronous and O(1): it only appends the change. Hooks run between a task's
awaits, interleaved with the broker's own code, where building a change cost about three
times what it costs in a tight loop (measured in the throughput benchmark): so the hot
hooks hand over plain values with `record_later()`, and the change is built here.
A background loop, every `event_interval` (25 ms: the live feed stays live), builds and
merges the changes into the latest row state per task attempt and publishes them as events
in one XADD to the `tasklens:events` stream (event_stream.py). While changes come sparsely
(fewer than `SPARSE_TICK_CHANGES` a tick) it ticks five times as often: an XADD per few
events costs nothing then, and each event reaches the dashboards sooner; a busy worker keeps
the full interval, where batching is what keeps its CPU on tasks. It writes the rows every
`write_interval` (100 ms, or as soon as `batch_size` rows wait, or after a tick with nothing
new) in one upsert: bigger batches cost the database less per row (measured: 135 µs/row in
batches of 25, 78 in 500).
With nothing recorded and nothing to write, the loop sleeps until the next change (an idle
worker spends no CPU on it) and publishes that one at once.
If the database is down, tasks never wait: with Redis (the distributed mode) each batch the
database refused is spilled to the `tasklens:unwritten` stream (log_spill.py) and drained
from there by whichever TaskLens process can write again; the loop probes the database with
backoff meanwhile. Without Redis, or when Redis fails too, rows stay buffered; when more than
`buffer_max` distinct rows are waiting, non-terminal rows are dropped first (a later state
of theirs replaces them), so a task's final state survives its earlier ones. Drops are
counted (`stats`, and `tasklens:log:rows_dropped` for /health/queue) and logged once per
outage, with a summary when writes recover.

A stream broker hands each finished task's message to `when_written` instead of
acknowledging it: the recorder acknowledges it (`acknowledge`, one pipeline per flush) once
every change recorded before it is durable, in the database or in the spill. A worker
killed before that leaves the message unacknowledged, and the broker delivers it again: a
finished task ends with its true final row, or runs again, never `pending` for good. If a
terminal row has to be dropped, the messages waiting for acknowledgement are left
unacknowledged for the same reason.

`written()` rides on the same mechanism: it waits until what was recorded before it is
durable, and has the loop write at once. The embedded mode's API answers 202 only after the
`pending` rows of what it accepted are in the log (its queue is its memory, and would die
with it unlogged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tasklens.tracking.database import create_engine
from tasklens.tracking.event_stream import EventStream, RedisEventStream
from tasklens.tracking.lifecycle import LifecycleChange
from tasklens.tracking.log_spill import LogSpill
from tasklens.tracking.log_store import LogStore, PostgresLogStore, SqlAlchemyLogStore, is_bad_data
from tasklens.tracking.settings import TrackingSettings

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
    rows_spilled: int = 0  # sent to Redis while the database refused them
    spill_failures: int = 0
    rows_drained: int = 0  # spilled rows (of any process) this one wrote to the database
    acks_withheld: int = 0  # messages left to be delivered again after terminal rows dropped


class NotWritten(Exception):
    """`written()` gave up: the rows stay buffered and are retried, but are not in the log."""


# A change to build at the flush: its builder, then the plain values it takes, in one tuple
# (not a builder and a tuple of values: every object the hooks keep until the flush adds to
# the garbage collector's passes, which a worker pays for per task).
ChangeToBuild = tuple[Any, ...]

# A tick that merged fewer changes than this is followed by a sparse one (a fifth of the
# event interval later). Since a tick's count scales with its interval, the two regimes hold
# each other in place: sparse ticks turn busy only past five times the rate at which busy
# ticks turn sparse.
SPARSE_TICK_CHANGES = 8
SPARSE_TICK_DIVISOR = 5


def tick_interval(event_interval: float, merged: int) -> float:
    """How long after a tick that merged `merged` changes the next one starts."""
    return event_interval if merged >= SPARSE_TICK_CHANGES else event_interval / SPARSE_TICK_DIVISOR


class LifecycleRecorder:
    def __init__(
        self,
        store: LogStore,
        events: EventStream | None,
        *,
        event_interval: float = 0.025,
        write_interval: float = 0.1,
        batch_size: int = 500,
        buffer_max: int = 200_000,
        max_events_per_flush: int = 5_000,
        spill: LogSpill | None = None,
        drain_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.events = events
        self.event_interval = event_interval
        self.write_interval = write_interval
        self.batch_size = batch_size
        self.buffer_max = buffer_max
        self.max_events_per_flush = max_events_per_flush
        self.spill = spill
        self.drain_interval = drain_interval
        # Set by a stream broker: acknowledges delivered messages, see `when_written`.
        self.acknowledge: Callable[[list[Any]], Awaitable[None]] | None = None
        self.stats = RecorderStats()
        self._acks: list[Any] = []  # handed in since the last merge
        self._merged_acks: list[Any] = []  # every change recorded before them is in _rows
        self._store_lock = asyncio.Lock()  # one write at a time on the store's connection
        self._drain_task: asyncio.Task[None] | None = None
        self._drain_stop = asyncio.Event()
        self._outage_spilled = self._outage_dropped = 0
        self._dropped_unreported = 0  # not yet added to the count in Redis
        self._spill_failing = self._drops_logged = False
        self._rows: dict[tuple[str, int], LifecycleChange] = {}
        self._in_flight = 0  # rows taken out of _rows by a write under way
        # In order, not yet merged; None where a change was withdrawn (`withdraw`).
        self._recorded: list[LifecycleChange | ChangeToBuild | None] = []
        self._merged_count = 0  # items recorded before those in _recorded: places are global
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._db_down_since: float | None = None
        self._stopping = False
        self._asleep = False  # the loop waits for a change, with no timeout
        self._urgent = False  # a `written()` call waits: write at once, not at the interval

    def record(self, change: LifecycleChange) -> None:
        self._recorded.append(change)
        if self._asleep or len(self._recorded) >= self.batch_size:
            self._wake.set()

    def record_later(self, change: ChangeToBuild) -> int:
        """Record the change `(build, *values)` stands for, built at the flush by
        `build(*values)`: the values must be plain data the caller no longer changes. Returns
        its place, for `withdraw`. One tuple from the caller: no second one built here."""
        recorded = self._recorded
        recorded.append(change)
        if self._asleep or len(recorded) >= self.batch_size:
            self._wake.set()
        return self._merged_count + len(recorded) - 1

    def withdraw(self, place: int) -> ChangeToBuild | None:
        """Takes back the change `record_later` recorded at `place`, if no flush has taken
        it yet, so that the caller records one change instead of two (a task's `success`
        carrying its `running`: most tasks start and end within one tick). None: too late,
        the change is merged and published already."""
        index = place - self._merged_count
        if index < 0:
            return None
        item = self._recorded[index]
        self._recorded[index] = None
        return item  # type: ignore[return-value]  # a place of record_later's: a tuple

    def when_written(self, ack: Any) -> None:
        """Pass `ack` to `acknowledge` once every change recorded until now is durable."""
        self._acks.append(ack)
        if self._asleep:
            self._wake.set()

    async def written(self, timeout: float) -> None:
        """Returns once everything recorded before this call is durable; raises NotWritten
        if it is not within `timeout` (the rows stay buffered and are retried)."""
        if self._task is None:  # no loop to do it (not started): write here
            await self.flush()
            if self._rows:
                raise NotWritten(f"{len(self._rows)} lifecycle rows could not be written")
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._urgent = True
        self.when_written(done)
        self._wake.set()
        try:
            await asyncio.wait_for(done, timeout)
        except TimeoutError:
            raise NotWritten(f"the lifecycle log was not written within {timeout:g} s") from None

    def _take_recorded(self) -> list[LifecycleChange | ChangeToBuild | None]:
        """What was recorded since the last call, in order; later places count on from it."""
        recorded, self._recorded = self._recorded, []
        self._merged_count += len(recorded)
        return recorded

    def _merge_recorded(self) -> list[LifecycleChange]:
        """Builds what was recorded since the last call and merges it into the rows; returns
        the changes in the order they happened, for the live events."""
        recorded = self._take_recorded()
        if self._acks:  # taken with the changes recorded before them
            self._merged_acks += self._acks
            self._acks = []
        self.stats.recorded += len(recorded)  # counted here: not a line more in the hooks
        changes: list[LifecycleChange] = []
        for item in recorded:
            if item is None:  # withdrawn: a later change includes it
                continue
            if isinstance(item, LifecycleChange):
                changes.append(item)
                continue
            try:
                changes.append(item[0](*item[1:]))
            except Exception:  # one bad change must not stop the loop that logs all the others
                self.stats.rows_rejected += 1
                logger.exception("lifecycle change of task %s could not be built", item[1:2])
        rows = self._rows
        for change in changes:
            key = (change.task_id, change.attempt)
            previous = rows.get(key)
            rows[key] = change if previous is None else change.absorb(previous)
        if len(rows) > self.buffer_max and self._nowhere_to_write():
            self._shed()
        return changes

    def _nowhere_to_write(self) -> bool:
        """Else an overflowing buffer is written (or spilled) at once, and only shed if
        that fails (`_requeue`)."""
        return self._db_down_since is not None and self.spill is None

    def _shed(self) -> None:
        excess = len(self._rows) - self.buffer_max
        victims = [k for k, c in self._rows.items() if not c.status.is_terminal][:excess]
        if len(victims) < excess:
            chosen = set(victims)
            victims += [k for k in self._rows if k not in chosen][: excess - len(victims)]
        final = any(self._rows[key].status.is_terminal for key in victims)
        for key in victims:
            del self._rows[key]
        self.stats.rows_dropped += len(victims)
        self._outage_dropped += len(victims)
        self._dropped_unreported += len(victims)
        if final and self._merged_acks:
            # Some of these tasks' final rows are gone: their messages stay unacknowledged,
            # so the broker delivers them again rather than their rows staying open.
            self.stats.acks_withheld += len(self._merged_acks)
            self._merged_acks = []
        if not self._drops_logged:
            self._drops_logged = True
            logger.error(
                "lifecycle buffer full (%d rows) and nowhere to write: dropping rows, "
                "earlier states first; a count follows when writes recover",
                self.buffer_max,
            )

    @property
    def backlog(self) -> int:
        """Rows not yet durable: buffered, or in a write (or spill) still under way."""
        return len(self._rows) + self._in_flight

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="tasklens-recorder")
        if self.spill is not None and self._drain_task is None:
            self._drain_stop.clear()
            self._drain_task = asyncio.create_task(self._drain_loop(), name="tasklens-drain")

    async def stop(self, timeout: float = 10.0) -> None:
        """Flush what is buffered, then stop the loop: both within `timeout` in all, then
        close (bounded too: the stores' and clients' own timeouts). A write cut off here
        leaves its messages unacknowledged: they are delivered again."""
        deadline = asyncio.get_running_loop().time() + timeout

        def left() -> float:
            return max(0.0, deadline - asyncio.get_running_loop().time())

        if self._drain_task is not None:
            self._drain_stop.set()  # let a drain under way finish: it holds the connection
            try:  # at most half: the last flush (this worker's own rows) matters more
                await asyncio.wait_for(self._drain_task, timeout / 2)
            except TimeoutError:
                logger.warning("draining the spilled rows did not stop in time")
            self._drain_task = None
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, left())
            except TimeoutError:
                logger.error(
                    "recorder stopped before its last write finished within %gs: that write's "
                    "rows and %d buffered rows unwritten, their messages unacknowledged",
                    timeout,
                    len(self._rows),
                )
            self._task = None
        await self.store.close()
        if self.events is not None:
            await self.events.close()
        if self.spill is not None:
            await self.spill.close()

    async def flush(self) -> None:
        """Publish and write everything buffered now (tests, shutdown)."""
        await self._merge_and_publish()
        await self._write_rows()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        retry_delay = self.write_interval
        next_write = next_probe = loop.time() + self.write_interval
        tick = loop.time()  # when the last tick began
        interval = tick_interval(self.event_interval, 0)  # until the next tick
        last_change = tick  # when the last tick that merged anything began
        while True:
            if self._asleep:
                await self._wake.wait()
                self._asleep = False
            elif (wait := tick + interval - loop.time()) > 0:
                # ticks start an interval apart: what was recorded during a long write goes
                # as soon as it ends, not an interval later
                with contextlib.suppress(TimeoutError):  # asyncio.timeout: no Task per wait
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
            self._wake.clear()
            tick = loop.time()
            self.stats.ticks += 1
            merged = await self._merge_and_publish()
            interval = tick_interval(self.event_interval, merged)
            if merged:
                last_change = tick
            # Nothing new for a whole event interval (a sparse tick's gap is no pause): the
            # tasks are done for now, so there is nothing to batch the waiting rows with (the
            # log shows the outcome at once). Not in a backoff.
            quiet = (
                merged == 0
                and tick - last_change >= self.event_interval
                and self._db_down_since is None
            )
            due = (
                quiet
                or loop.time() >= next_write
                or len(self._rows) >= min(self.batch_size, self.buffer_max)
            )
            if self._urgent and self._db_down_since is None:
                due = True  # someone waits for these rows (not in a backoff)
                self._urgent = False
            ok = True
            # While the database is away, it is asked again with backoff only; between two
            # asks the rows go straight to the spill. With nothing to write, an empty write
            # asks: the spill waits for this process to see the database back.
            probe = self._db_down_since is None or loop.time() >= next_probe
            if (self._rows or self._merged_acks) and (due or self._stopping):
                ok = await self._write_rows(try_database=probe or self.spill is None)
                next_write = loop.time() + (self.write_interval if ok else retry_delay)
            elif self.spill is not None and self._db_down_since is not None and probe:
                await self._write([])
            else:
                probe = False
            if probe:
                down = self._db_down_since is not None
                retry_delay = min(max(retry_delay * 2, 0.1), 5.0) if down else self.write_interval
                next_probe = loop.time() + retry_delay
            if self._stopping and (ok or not self._rows):
                if not (self._recorded or self._acks):
                    return
                continue  # recorded while this write ran: one more turn writes it
            # Idle (every row written, nothing new): no more ticks until `record()` wakes us.
            self._asleep = (
                quiet
                and not self._rows
                and not self._recorded
                and not self._acks
                and not self._merged_acks
            )

    async def _merge_and_publish(self) -> int:
        changes = self._merge_recorded()
        if changes and self.events is not None:
            await self._publish(changes)
        return len(changes)

    async def _write_rows(self, try_database: bool = True) -> bool:
        """Makes the buffered rows durable, in the database or else in the spill, then
        acknowledges the messages that waited for them. False: they are still buffered."""
        acks, self._merged_acks = self._merged_acks, []
        if not self._rows:
            await self._acknowledge(acks)
            return True
        batch, self._rows = self._rows, {}
        changes = list(batch.values())
        self._in_flight = len(changes)
        try:
            durable = try_database and await self._write(changes)
            if not durable and not await self._spill(changes):
                self._merged_acks = acks + self._merged_acks
                self._requeue(batch)
                return False
        finally:
            self._in_flight = 0
        await self._acknowledge(acks)
        return True

    async def _write(self, changes: list[LifecycleChange]) -> bool:
        try:
            await self._write_to_store(changes)
        except Exception as exc:
            self.stats.write_failures += 1
            if self._db_down_since is None:
                self._db_down_since = asyncio.get_running_loop().time()
                where = "spilled to Redis" if self.spill is not None else "buffered"
                logger.warning(
                    "lifecycle log write failed (%s); rows are %s until it is back, retrying",
                    exc,
                    where,
                )
            return False
        if self._db_down_since is not None:
            self._recovered()
        self.stats.flushes += 1
        self.stats.rows_written += len(changes)
        return True

    async def _write_to_store(self, changes: list[LifecycleChange]) -> None:
        async with self._store_lock:
            try:
                await self.store.upsert(changes)
            except Exception as exc:
                if not is_bad_data(exc):
                    raise
                await self._write_apart(changes, exc)

    def _recovered(self) -> None:
        """The outage's one summary line."""
        assert self._db_down_since is not None
        down_for = asyncio.get_running_loop().time() - self._db_down_since
        logger.warning(
            "lifecycle log writes recovered after %.1fs: %d rows were spilled to Redis "
            "meanwhile, %d rows dropped",
            down_for,
            self._outage_spilled,
            self._outage_dropped,
        )
        self._db_down_since = None
        self._outage_spilled = self._outage_dropped = 0
        self._drops_logged = False

    async def _spill(self, changes: list[LifecycleChange]) -> bool:
        if self.spill is None:
            return False
        try:
            await self.spill.spill(changes, self._dropped_unreported)
        except Exception as exc:
            self.stats.spill_failures += 1
            if not self._spill_failing:
                self._spill_failing = True
                logger.warning("could not spill unwritten rows to Redis (%s): buffering", exc)
            return False
        self._spill_failing = False
        self._dropped_unreported = 0
        self.stats.rows_spilled += len(changes)
        self._outage_spilled += len(changes)
        return True

    async def _acknowledge(self, acks: list[Any]) -> None:
        if not acks:
            return
        if any(isinstance(ack, asyncio.Future) for ack in acks):
            for waiter in acks:  # `written()` calls; one that timed out was cancelled
                if isinstance(waiter, asyncio.Future) and not waiter.done():
                    waiter.set_result(None)
            acks = [ack for ack in acks if not isinstance(ack, asyncio.Future)]
        if not acks or self.acknowledge is None:
            return
        try:
            await self.acknowledge(acks)
        except Exception as exc:  # they are delivered again after the idle timeout
            logger.warning("could not acknowledge %d finished messages: %s", len(acks), exc)

    async def _drain_loop(self) -> None:
        """Writes rows spilled by any process (this one included) while writes succeed."""
        assert self.spill is not None
        failing = False
        while not self._drain_stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drain_stop.wait(), self.drain_interval)
            if self._db_down_since is not None or self._drain_stop.is_set():
                continue
            try:
                if self._dropped_unreported:
                    dropped = self._dropped_unreported
                    await self.spill.count_dropped(dropped)
                    self._dropped_unreported -= dropped
                while not self._drain_stop.is_set():
                    written = await self.spill.drain(self._write_to_store)
                    self.stats.rows_drained += written
                    if not written:
                        break
                failing = False
            except Exception as exc:
                if not failing:
                    logger.warning("could not drain the spilled lifecycle rows: %s", exc)
                failing = True

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
        assert self.events is not None
        for start in range(0, len(changes), self.max_events_per_flush):
            chunk = changes[start : start + self.max_events_per_flush]
            try:
                await self.events.publish_changes(chunk)
            except Exception as exc:
                self.stats.events_dropped += len(chunk)
                logger.warning("could not publish %d live events: %s", len(chunk), exc)


def build_recorder(
    database_url: str,
    redis_url: str | None,
    *,
    events: EventStream | None = None,
    engine: AsyncEngine | None = None,
    event_interval: float = 0.025,
    write_interval: float = 0.1,
    batch_size: int = 500,
    buffer_max: int = 200_000,
    schema: str | None = None,
) -> LifecycleRecorder:
    """A recorder for these URLs: Postgres via asyncpg, SQLite via SQLAlchemy."""
    store: LogStore
    if database_url.startswith("postgresql"):
        store = PostgresLogStore(database_url, schema)
    else:
        store = SqlAlchemyLogStore(engine or create_engine(database_url, schema))
    if events is None and redis_url is not None:
        events = RedisEventStream(redis_url)
    return LifecycleRecorder(
        store,
        events,
        spill=None if redis_url is None else LogSpill(redis_url),
        event_interval=event_interval,
        write_interval=write_interval,
        batch_size=batch_size,
        buffer_max=buffer_max,
    )


def recorder_for(
    settings: TrackingSettings,
    *,
    events: EventStream | None = None,
    engine: AsyncEngine | None = None,
) -> LifecycleRecorder:
    return build_recorder(
        settings.database_url,
        settings.redis_url,
        events=events,
        engine=engine,
        event_interval=settings.event_flush_interval_ms / 1000,
        write_interval=settings.log_write_interval_ms / 1000,
        batch_size=settings.log_batch_size,
        buffer_max=settings.log_buffer_max,
        schema=settings.db_schema,
    )
