"""The API's response shapes: the contract in specs/openapi.json and the SPA's types."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
)

from tasklens.analyses.kinds import AnalysisKind
from tasklens.analyses.periods import Period
from tasklens.monitoring import SeriesBucket, TaskMetrics
from tasklens.priorities import Priority
from tasklens.tokens import Role
from tasklens.tracking.lifecycle import MAX_JSON_CHARS
from tasklens.tracking.models import TaskStatus


class TaskLogItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    task_id: str
    task_name: str
    status: TaskStatus
    params: Any | None
    queue: str | None
    attempt: int
    worker: str | None
    progress: float | None
    progress_message: str | None
    result: Any | None
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: float | None
    error_message: str | None
    error_traceback: str | None
    created_at: datetime
    updated_at: datetime


class HistoryResponse(BaseModel):
    total_count: int
    page: int
    page_size: int
    total_pages: int
    total_is_estimate: bool = Field(
        description="True when total_count is a lower bound: a search (q, queue, worker) "
        "counts its matches up to 5,000, another order without a search counts up to 5,000 "
        "from the hourly counts; newest first without a search is exact"
    )
    items: list[TaskLogItem]


class TaskMetricsItem(TaskMetrics):
    """Per task name: counts by status, durations, success rate."""


class MetricsResponse(BaseModel):
    time_window_hours: int
    generated_at: datetime
    metrics: list[TaskMetricsItem]
    log_rows_dropped: int | None = Field(
        description="Lifecycle rows dropped because neither the database nor Redis could "
        "take them (null: Redis unreachable)"
    )


class TimeseriesResponse(BaseModel):
    time_window_hours: int
    generated_at: datetime = Field(description="When the series was read, UTC")
    bucket_seconds: int
    series: list[SeriesBucket]


class AttemptItem(BaseModel):
    """One run of the task: enqueued at created_at, waited until started_at, ran for
    duration_ms; the gap from one attempt's completed_at to the next's created_at is the
    retry delay (the task page draws them as a timeline)."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int
    status: TaskStatus
    queue: str | None
    worker: str | None
    created_at: datetime = Field(description="When this attempt was enqueued")
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: float | None
    error_message: str | None
    error_traceback: str | None
    run_at: datetime | None = Field(
        default=None,
        description="When an attempt sent with a delay (a retry backing off) is due; "
        "null when it was sent to run at once",
    )


class TaskDetail(BaseModel):
    task_id: str
    task_name: str
    status: TaskStatus
    queue: str | None
    worker: str | None = Field(description="The latest attempt's worker (hostname:pid)")
    progress: float | None
    progress_message: str | None
    params: Any | None
    result: Any | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: float | None
    error_message: str | None = Field(description="The latest attempt's error, if it has one")
    retry_at: datetime | None = Field(
        default=None,
        description="When the next attempt starts, while it waits out its retry delay "
        "(the latest attempt is pending and due later); null otherwise",
    )
    attempts: list[AttemptItem]


class HealthResponse(BaseModel):
    status: str = Field(description="ok or degraded")
    mode: str = Field(description="embedded or distributed")
    database: str = Field(
        description="ok, down (unreachable), or for the embedded SQLite file: missing, "
        "replaced (not the file opened at startup) or unwritable"
    )
    redis: str = Field(description="ok, down, or not_used in the embedded mode")


class ReadinessChecks(BaseModel):
    database: str = Field(
        description="ok, down (unreachable or slower than the probe's timeout), or for the "
        "embedded SQLite file: missing, replaced or unwritable"
    )
    redis: str = Field(description="ok, down, or not_used in the embedded mode")


class Liveness(BaseModel):
    status: str = Field(description="always ok: the process answers")


class Readiness(BaseModel):
    status: str = Field(description="ready")
    checks: ReadinessChecks


class NotReady(BaseModel):
    error: str = Field(description="names the parts that are down")
    checks: ReadinessChecks


class WhoAmI(BaseModel):
    name: str
    role: Role


DemoTaskName = Literal["demo.quick", "demo.slow", "demo.flaky", "demo.noop"]


class DemoRequest(BaseModel):
    count: int = Field(default=20, ge=1, le=10_000)
    priority: Priority = Priority.DEFAULT
    task: DemoTaskName | None = Field(
        default=None, description="Only this demo task (default: a mix of them)"
    )
    params: dict[str, Any] | None = Field(
        default=None,
        description="Keyword arguments for `task` (e.g. failure_rate); "
        f"at most {MAX_JSON_CHARS} bytes as JSON",
    )

    @field_validator("params")
    @classmethod
    def _small_enough_to_log(cls, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """Params go to Redis once per task and into the log: bounded like the log's copy."""
        if params is None:
            return None
        try:
            size = len(orjson.dumps(params))
        except orjson.JSONEncodeError:
            raise ValueError("nested too deeply (at most 254 levels)") from None
        if size > MAX_JSON_CHARS:
            raise ValueError(f"{size} bytes as JSON, at most {MAX_JSON_CHARS}")
        return params


class DemoResponse(BaseModel):
    enqueued: int
    task_ids: list[str]


class AnalysisParams(BaseModel):
    period: Period | None = Field(
        default=None, description="Default: all (repository), 1_year (github_user)"
    )


class AnalysisRequest(BaseModel):
    kind: AnalysisKind
    subject: str = Field(
        min_length=1,
        max_length=2000,
        description="A git URL or local path (repository); a login (github_user)",
    )
    params: AnalysisParams = Field(default_factory=AnalysisParams)
    priority: Priority = Field(
        default=Priority.HIGH,
        description="high (manual triggers), default, or low (scheduled): separate queues, "
        "high read first",
    )
    force: bool = Field(
        default=False,
        description="Run even if a fresh result exists; "
        "rate-limited per token (TASKLENS_REFRESH_RATE_LIMIT)",
    )


class AnalysisSubmitted(BaseModel):
    task_id: str
    status: TaskStatus
    deduplicated: bool = Field(description="The same analysis was already queued or running")
    cached: bool = Field(description="A fresh result exists: nothing was run (200)")


class AnalysisView(BaseModel):
    kind: AnalysisKind
    subject: str
    period: Period
    result: dict[str, Any] | None
    created_at: datetime | None
    cache_age_seconds: float | None
    is_stale: bool
    is_regenerating: bool
    task_id: str | None = Field(description="The running regeneration, else the result's task")
    live_unavailable: bool = Field(
        description="Redis is unreachable: served from the database alone; whether it is "
        "being regenerated is unknown and no regeneration was started",
    )
    failed_task_id: str | None = Field(
        default=None,
        description="Its last run failed or was cancelled within the stale interval: "
        "reading does not start it again (POST /api/v1/tasks/{id}/retry does)",
    )
    attempts_allowed: int = Field(
        description="Attempts a run gets when it fails transiently (1 + TASKLENS_MAX_RETRIES): "
        "a failed attempt before the last is retried, not final",
    )


class AnalysisSummary(BaseModel):
    """One cached report, without its (possibly large) result."""

    kind: AnalysisKind
    subject: str
    period: Period
    created_at: datetime
    cache_age_seconds: float
    is_stale: bool
    task_id: str


class RecentAnalyses(BaseModel):
    items: list[AnalysisSummary]


class RefreshItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    requested_by: str = Field(description="The token's name")
    requested_at: datetime
    task_id: str
    deduplicated: bool
    outcome: TaskStatus
    duration_ms: float | None


class RefreshHistory(BaseModel):
    kind: AnalysisKind
    subject: str
    period: Period
    refreshes: list[RefreshItem]
    refreshes_left: int = Field(
        description="Forced refreshes the caller's token may still make in the current window"
    )
    refresh_limit: int = Field(description="Forced refreshes per token per window")
    refresh_window_seconds: int = Field(description="The sliding window of the limit")


class RetryResponse(BaseModel):
    task_id: str = Field(description="The new task")
    retry_of: str


class FailureGroupItem(BaseModel):
    fingerprint: str = Field(description="16 hex characters: exception type, message, frame")
    exception_type: str = Field(description='"" when the error is not `Type: message`')
    message: str = Field(description="The message with numbers, ids, hex and paths replaced")
    frame: str = Field(description="The innermost frame of the app's code, `dir/file.py:func`")
    count: int = Field(description="Failed attempts in the window")
    tasks: int = Field(description="Distinct tasks among them")
    task_names: list[str]
    first_seen: datetime
    last_seen: datetime
    trend: list[int] = Field(description="Failed attempts per hour, oldest first")
    sample_task_id: str = Field(description="The newest failure's task")
    sample_error_message: str | None
    sample_traceback: str | None


class FailuresResponse(BaseModel):
    time_window_hours: int
    generated_at: datetime
    bucket_seconds: int
    trend_start: datetime = Field(description="Start of the first hour of every `trend`")
    group_count: int = Field(description="Groups in the window; `groups` lists the newest 100")
    scanned: int = Field(description="Failed attempts read")
    truncated: bool = Field(
        description="More than 50,000 failed attempts: the window's oldest were not read"
    )
    groups: list[FailureGroupItem]


def _iso_date_time(value: Any) -> Any:
    """Only an ISO-8601 date-time string: pydantic would also read `0` as a Unix time."""
    if value is not None and not (isinstance(value, str) and _DATE_TIME.match(value)):
        raise ValueError("expected an ISO-8601 date-time, e.g. 2024-05-01T12:00:00Z")
    return value


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
BodyDateTime = Annotated[datetime | None, BeforeValidator(_iso_date_time)]
# The same in a query parameter (`?start_date=`, `?since=`): pydantic would read `0.5` as a
# Unix time and `2024-05-01` as midnight; the contract says ISO-8601 date-time.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_date_time)]


class GroupActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_window: StrictInt = Field(default=24, ge=1, le=720, description="Hours back, as listed")
    dry_run: StrictBool = Field(default=False, description="Only count what it would touch")


class FailureFilterRequest(BaseModel):
    """The history's filters; the status is always `failed`."""

    model_config = ConfigDict(extra="forbid")

    task_name: str | None = Field(default=None, max_length=255)
    start_date: BodyDateTime = Field(default=None, description="ISO-8601; UTC if naive")
    end_date: BodyDateTime = Field(default=None, description="ISO-8601; UTC if naive")
    q: str | None = Field(default=None, max_length=200)
    queue: str | None = Field(default=None, max_length=255)
    worker: str | None = Field(default=None, max_length=255)
    fingerprint: str | None = Field(default=None, pattern=r"^[0-9a-f]{16}$")
    dry_run: StrictBool = Field(default=False, description="Only count what it would touch")


class SkippedTask(BaseModel):
    task_id: str
    error: str = Field(description="Why the retry refused it")


class BulkRetryResponse(BaseModel):
    dry_run: bool
    matched: int = Field(description="Tasks selected whose latest attempt failed")
    cap: int = Field(description="TASKLENS_BULK_RETRY_MAX: the most one request retries")
    to_retry: int = Field(description="min(matched, cap): what it retries (or would)")
    remaining: int = Field(description="Matched tasks left for another request")
    retried: list[RetryResponse] = Field(description="Each new task and its original")
    skipped: list[SkippedTask]


class DismissResponse(BaseModel):
    dry_run: bool
    matched: int = Field(description="Failed tasks selected (not dismissed before)")
    dismissed: int


class SyncAnalysisResponse(BaseModel):
    task_id: str
    status: TaskStatus
    cached: bool
    result: dict[str, Any] | None
    error_message: str | None = Field(description="Why it failed, when it did")


class CancelResponse(BaseModel):
    task_id: str
    status: Literal["cancelled", "cancelling"]


class QueueItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str = Field(description="high, default or low")
    stream: str
    depth: int = Field(description="Waiting: not yet delivered to a worker")
    in_flight: int = Field(description="Delivered, not yet finished and acknowledged")
    paused: bool = Field(description="Workers take no new message from it until resumed")


class WorkerItem(BaseModel):
    id: str = Field(description="hostname:pid")
    hostname: str
    pid: int
    started_at: datetime
    last_seen: datetime
    running: int
    online: bool = Field(description="False after 30 s without a heartbeat")
    uptime_seconds: float = Field(
        description="Since the worker started; an offline worker's stops at its last heartbeat"
    )
    processed: int | None = Field(
        default=None,
        description="Attempts it finished since it started (success, failed, cancelled); "
        "null from a worker too old to say",
    )
    failed: int | None = Field(default=None, description="Of those, the failed ones")
    concurrency: int | None = Field(
        default=None, description="Tasks it runs at once; null when its app did not say"
    )
    queues: list[str] = Field(default=[], description="The queues (streams) it consumes")


class QueuesResponse(BaseModel):
    queues: list[QueueItem]
    workers: list[WorkerItem]


class QueuePauseResponse(BaseModel):
    queue: Priority
    paused: bool


class QueuePurgeResponse(BaseModel):
    queue: Priority
    purged: int = Field(description="Waiting messages removed; their tasks end cancelled")


class ScheduleLastRun(BaseModel):
    task_id: str = Field(
        description="The analysis the scheduled refresh started, else the refresh task itself"
    )
    task_name: str
    status: str = Field(
        description="The task's status in the log, or `sent` while (or once) it is not there"
    )
    at: datetime = Field(description="When it ended, else when it was sent")


class ScheduleItem(BaseModel):
    schedule_id: str
    kind: str
    subject: str
    period: str | None
    cron: str | None = Field(description="UTC, minute resolution")
    interval_seconds: int | None
    next_run_at: datetime | None = Field(
        description="UTC; null for a cron that never matches (`0 0 31 2 *`)"
    )
    last_run: ScheduleLastRun | None = Field(description="Null until a scheduler sent it")


class SchedulesResponse(BaseModel):
    configured: bool = Field(description="False without TASKLENS_SCHEDULES_FILE")
    error: str | None = Field(
        description="Why the file cannot be read now (schedulers keep its last good version)"
    )
    schedules: list[ScheduleItem]


class QueueHealth(BaseModel):
    status: str = Field(description="ok, or degraded when no worker is online")
    broker: str
    workers_online: int
    depths: dict[str, int]
    log_rows_dropped: int = Field(
        description="Lifecycle rows dropped because neither the database nor Redis could take them"
    )
    log_batches_unwritten: int = Field(
        description="Batches of lifecycle rows spilled to Redis during a database outage, "
        "not yet written to the database"
    )
    lost_messages: int = Field(
        description="Tasks closed as failed because Redis no longer held their message "
        "(its data was lost), counted since that Redis's data began; 0 in the embedded mode"
    )


class AlertRuleItem(BaseModel):
    name: str
    kind: str = Field(
        description="failure_rate, new_failure, queue_age, no_workers, slow, log_loss"
    )
    threshold: float
    unit: str = Field(description="What the threshold and the value measure")
    notify: list[str] = Field(description="Names of the webhooks told")
    cooldown_minutes: float
    params: dict[str, str | int | float | None] = Field(
        description="The kind's own fields: task_name, window_minutes, min_runs, queue"
    )
    state: Literal["firing", "ok"]
    since: datetime | None = Field(description="When the current firing began")
    value: float | None = Field(description="The current firing's latest value")


class AlertRulesResponse(BaseModel):
    configured: bool = Field(description="False without TASKLENS_ALERTS_FILE")
    file_error: str | None = Field(
        description="Why the file's latest edit is not applied (the last good rules are)"
    )
    webhooks: dict[str, str] = Field(description="name → scheme://host/… (never the full URL)")
    rules: list[AlertRuleItem]


class AlertFiringItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    rule: str
    kind: str
    started_at: datetime
    resolved_at: datetime | None = Field(description="null while it fires")
    value: float | None = Field(description="The latest value measured while it fired")
    peak: float | None
    threshold: float
    link: str = Field(description="The dashboard page that shows it")
    notified: bool = Field(description="Its firing webhook was sent (false: within the cooldown)")
    detail: dict[str, Any] | None


class AlertsResponse(BaseModel):
    configured: bool
    firing: list[AlertFiringItem]
    history: list[AlertFiringItem] = Field(description="The latest 200 firings, newest first")


class AuditItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str = Field(description="The token's name (`cli:<user>` for the command line)")
    action: str = Field(description="retry, bulk_retry, cancel, purge, pause, resume, …")
    target: str = Field(description="What it acted on: a task id, queue, fingerprint, …")
    count: int = Field(description="How many things it touched")
    outcome: str = Field(description='"ok", "refused: <why>" or "failed: <error type>"')
    detail: dict[str, str | int] | None


class AuditPageResponse(BaseModel):
    items: list[AuditItem]
    next_before_id: int | None = Field(description="Pass as `before_id` for older entries")
