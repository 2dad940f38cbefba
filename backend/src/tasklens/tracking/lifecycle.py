"""A lifecycle change: what the middleware saw happen to one attempt of one task.

Changes are both broadcast as live events and merged into log rows (only the latest state
per task attempt reaches the database, which is what makes batching cheap).
The two changes every task has, `running` and `success`, are built by `running_change` and
`succeeded_change` from plain values at the recorder's flush rather than in the hooks; by
`ran_change` alone when both wait for the same flush.

A change's times are Unix seconds (floats), turned into datetimes only where they leave
the process: in the stores' statements and in the live events' readers. A worker converting
and formatting datetimes itself spent about a sixth of a no-op task's logging on them
(specs/benchmarks.md, round 5).
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from tasklens.tracking.models import STATUS_RANK, TaskStatus

MAX_JSON_CHARS = 64_000
NUL_REPLACEMENT = "\ufffd"


@dataclass(slots=True)
class LifecycleChange:
    task_id: str
    task_name: str
    status: TaskStatus
    timestamp: float  # Unix seconds, as every time here
    attempt: int = 1
    created_at: float | None = None
    params: Any = None
    queue: str | None = None
    worker: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    result: Any = None
    started_at: float | None = None
    completed_at: float | None = None
    duration_ms: float | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    run_at: float | None = None  # a delayed attempt's due time (taskiq's `delay` label)

    def absorb(self, older: LifecycleChange) -> LifecycleChange:
        """Make this (newer) change the row's whole state: the status never goes back, and
        fields this change does not know are kept from `older`. Mutates and returns self;
        `older` is left as it was (it may still be waiting to be broadcast)."""
        rank = STATUS_RANK[self.status]
        if STATUS_RANK[older.status] > rank:
            self.status = older.status
        # Spelled out rather than a loop over field names: this runs for every task on the
        # worker's hot path, where getattr/setattr by name cost several µs (py-spy).
        # tests/test_log_store.py checks that every field is covered.
        if self.params is None:
            self.params = older.params
        if self.queue is None:
            self.queue = older.queue
        if self.worker is None:
            self.worker = older.worker
        if self.progress is None:
            self.progress = older.progress
        if self.progress_message is None:
            self.progress_message = older.progress_message
        if self.result is None:
            self.result = older.result
        if self.started_at is None:
            self.started_at = older.started_at
        if self.completed_at is None:
            self.completed_at = older.completed_at
        if self.duration_ms is None:
            self.duration_ms = older.duration_ms
        if self.run_at is None:
            self.run_at = older.run_at
        if rank < 2:  # a terminal change is the whole outcome: its error, or none, stands
            if self.error_message is None:
                self.error_message = older.error_message
            if self.error_traceback is None:
                self.error_traceback = older.error_traceback
        if older.created_at is not None:
            self.created_at = older.created_at
        return self

    def to_event(self) -> dict[str, Any]:
        return event_from_row(self.to_event_row())

    def to_event_row(self) -> tuple[Any, ...]:
        """The event as a flat tuple (`event_from_row` makes the event of it): what travels
        between processes, so the worker does not build two dicts per event."""
        return (
            self.task_name,
            self.status,  # a StrEnum: orjson writes its value, and skipping `.value` saves µs
            self.timestamp,
            self.task_id,
            self.attempt,
            self.duration_ms,
            self.error_message,
            self.params,
            self.progress,
            self.progress_message,
            self.queue,
            self.worker,
        )


def event_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """The live event of a `to_event_row()` tuple (or of the JSON array it was sent as)."""
    (
        name,
        status,
        timestamp,
        task_id,
        attempt,
        duration,
        error,
        params,
        progress,
        note,
        queue,
        worker,
    ) = row
    return {
        "type": "task_event",
        "task_name": name,
        "status": status,
        # Text from a worker of an earlier release: it sent the datetime as orjson wrote it.
        "timestamp": timestamp if isinstance(timestamp, str) else iso_time(timestamp),
        "data": {
            "task_id": task_id,
            "attempt": attempt,
            "duration_ms": duration,
            "error_message": error,
            "params": params,
            "progress": progress,
            "progress_message": note,
            "queue": queue,
            "worker": worker,
        },
    }


def running_change(
    task_id: str,
    task_name: str,
    attempt: int,
    at: float,
    enqueued_at: Any,
    params: Any,
    queue: str | None,
    worker: str,
) -> LifecycleChange:
    """`running` from the worker's pre_execute. `enqueued_at` is the raw label a sending
    TaskLensMiddleware stamped, or None for a message sent without it."""
    return LifecycleChange(
        task_id,
        task_name,
        TaskStatus.RUNNING,
        at,
        attempt,
        None if enqueued_at is None else label_time(enqueued_at, at),
        params,
        queue,
        worker,
        started_at=at,
    )


def succeeded_change(
    task_id: str,
    task_name: str,
    attempt: int,
    at: float,
    started_at: float | None,
    duration_ms: float | None,
    result: Any,
    worker: str,
    enqueued_at: Any = None,
    storable: Callable[[Any], Any] | None = None,
) -> LifecycleChange:
    """`success` from the worker's post_execute. `enqueued_at` is the raw enqueue stamp, as
    for `running`: with it the row's created_at is known, so this write lands on the
    attempt's row even when it reaches the database before the earlier ones (a spill drained
    later), instead of starting a row of its own. `storable` makes the result fit to keep
    (cut short, cleared of secrets) here at the flush rather than in the hook."""
    if storable is not None:
        result = storable(result)
    return LifecycleChange(
        task_id,
        task_name,
        TaskStatus.SUCCESS,
        at,
        attempt,
        None if enqueued_at is None else label_time(enqueued_at, at),
        worker=worker,
        progress=1.0,
        result=result,
        started_at=started_at,
        completed_at=at,
        duration_ms=duration_ms,
    )


def ran_change(
    task_id: str,
    task_name: str,
    attempt: int,
    started_at: float,
    at: float,
    duration_ms: float,
    result: Any,
    worker: str,
    enqueued_at: Any,
    params: Any,
    queue: str | None,
    storable: Callable[[Any], Any] | None = None,
) -> LifecycleChange:
    """`success` and its `running` in one change, when both wait for the same flush: the
    row `succeeded_change(...).absorb(running_change(...))` makes, built once (and one live
    event: the task ran within a tick). Its created_at falls back on the start, as the
    absorbed `running`'s would (tests/test_lifecycle.py compares the two)."""
    if storable is not None:
        result = storable(result)
    return LifecycleChange(
        task_id,
        task_name,
        TaskStatus.SUCCESS,
        at,
        attempt,
        None if enqueued_at is None else label_time(enqueued_at, started_at),
        params,
        queue,
        worker,
        progress=1.0,
        result=result,
        started_at=started_at,
        completed_at=at,
        duration_ms=duration_ms,
    )


# The latest Unix time a datetime holds (9999-12-31T23:59:59.999999Z) with a day to spare:
# a time past it, or before 1970, is a garbled stamp, not a moment to store.
LAST_TIME = 253_402_214_400.0


def label_time(raw: Any, default: float) -> float:
    """A label's Unix time; `default` when it is not one (any sender may set labels: a
    value no store could hold must not reach one, where it would fail its whole batch)."""
    try:
        moment = float(raw)
    except (TypeError, ValueError):
        return default
    return moment if 0.0 <= moment < LAST_TIME else default  # NaN fails both


def as_datetime(moment: float) -> datetime:
    """A change's time as a datetime, the way every store and reader converts it: the
    PostgreSQL store's statement rounds exactly as this does (log_store.py)."""
    return _from_timestamp(moment, UTC)


def as_time(moment: datetime) -> float:
    """A datetime (read from the log) as a change's time; `as_datetime` gives it back."""
    return moment.timestamp()


def iso_time(moment: float) -> str:
    """A change's time as a live event says it: RFC 3339, as orjson writes a datetime."""
    return _from_timestamp(moment, UTC).isoformat()


_from_timestamp = datetime.fromtimestamp  # bound once: the attribute builds a method per call


def _is_small_plain_json(value: Any, budget: list[int]) -> bool:
    """True for JSON-native data of modest size, which needs no encode/decode round trip.
    Strings with a NUL byte take the round trip too (PostgreSQL refuses NUL in jsonb)."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        budget[0] -= len(value) // 64
        return budget[0] >= 0 and "\x00" not in value
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and "\x00" not in k and _is_small_plain_json(v, budget)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return all(_is_small_plain_json(v, budget) for v in value)
    return False


# `\u0000` in JSON text, unless its backslash is itself escaped (`\\u0000` is the six
# characters `\u0000`, which PostgreSQL stores fine).
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
# Deep enough for any sane payload, shallow enough that repr() cannot hit Python's recursion
# limit on data nested thousands of levels deep (orjson itself stops at 254).
_PREVIEW = reprlib.Repr()  # keyword arguments only from Python 3.12
_PREVIEW.maxlevel = 32
_PREVIEW.maxdict = _PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxset = 50
_PREVIEW.maxstring = _PREVIEW.maxother = MAX_JSON_CHARS


_JSON_NUL_BYTES = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def json_without_nul(payload: bytes) -> bytes:
    """JSON text whose escaped NULs (PostgreSQL refuses U+0000 in text and jsonb) are U+FFFD."""
    return _JSON_NUL_BYTES.sub(rb"\1\\ufffd", payload) if b"\\u0000" in payload else payload


def without_nul(text: str) -> str:
    """PostgreSQL text and jsonb cannot hold U+0000: it is stored as U+FFFD instead."""
    return text.replace("\x00", NUL_REPLACEMENT) if "\x00" in text else text


def json_safe(value: Any, max_chars: int = MAX_JSON_CHARS) -> Any:
    """A JSON-storable copy of a task's params or result, cut short (marked `truncated`)
    past `max_chars` of JSON. Data that JSON cannot hold (other types, nesting past 254
    levels) is kept as a bounded repr; what cannot even be printed as `<unprintable T>`."""
    # Plain data well under the cap is kept as it is (a smaller cap, a smaller budget).
    if value is None or _is_small_plain_json(value, [min(256, max_chars // 250)]):
        return value
    if isinstance(value, str) and len(value) > max_chars:
        value = value[: max_chars + 1]  # its JSON is longer than max_chars all the same
    try:
        text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except Exception:  # TypeError, ValueError, or whatever a hostile __str__ raised
        text = orjson.dumps(without_nul(_preview(value))).decode()
    if "\\u0000" in text:
        text = _JSON_NUL.sub(r"\1\\ufffd", text)
    if len(text) > max_chars:
        return {"truncated": True, "preview": text[:max_chars]}
    return orjson.loads(text)


def _preview(value: Any) -> str:
    try:
        return _PREVIEW.repr(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
