"""The lifecycle log: one row per task attempt, the single source of truth the dashboard shows."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED})
# Order of the lifecycle: a write never moves a row back to a lower rank.
STATUS_RANK = {TaskStatus.PENDING: 0, TaskStatus.RUNNING: 1} | {s: 2 for s in TERMINAL_STATUSES}


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on every backend (SQLite stores naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def serial_id() -> Any:
    """An auto-increment primary key: BIGINT on PostgreSQL, INTEGER (rowid) on SQLite."""
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return Field(default=None, sa_column=sa.Column(big, primary_key=True, autoincrement=True))


def utcnow() -> datetime:
    return datetime.now(UTC)


class TaskExecutionLog(SQLModel, table=True):
    __tablename__ = "task_execution_logs"
    __table_args__ = (
        sa.Index("ix_task_logs_name_status_created", "task_name", "status", "created_at", "id"),
        sa.Index("ix_task_logs_created_at", "created_at", "id"),
        sa.Index("ix_task_logs_task_name", "task_name", "created_at", "id"),
        sa.Index("ix_task_logs_status", "status", "created_at", "id"),
        # The later attempts, from which the reaper finds superseded rows (migration 0016).
        sa.Index(
            "ix_task_logs_later_attempts",
            "task_id",
            "attempt",
            postgresql_where=sa.text("attempt > 1"),
            sqlite_where=sa.text("attempt > 1"),
        ),
        sa.UniqueConstraint("task_id", "attempt", name="uq_task_logs_task_attempt"),
    )

    id: int | None = serial_id()
    task_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    task_name: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    status: TaskStatus = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    params: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))
    queue: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))
    attempt: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    worker: str | None = Field(default=None, sa_column=sa.Column(sa.String(255)))
    progress: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    progress_message: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    result: Any | None = Field(default=None, sa_column=sa.Column(JSONType))
    started_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    completed_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    duration_ms: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    error_message: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    error_traceback: str | None = Field(default=None, sa_column=sa.Column(sa.Text))
    # When an attempt sent with a delay (a retry backing off) is due; None: at once.
    run_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime, nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime, nullable=False)
    )


class ApiToken(SQLModel, table=True):
    """Generated tokens, stored as SHA-256 digests so a database dump leaks none."""

    __tablename__ = "api_tokens"

    name: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    role: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    token_sha256: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime, nullable=False)
    )


class TaskLogCount(SQLModel, table=True):
    """Rows per hour, task name and status; kept by database triggers (migration 0002)."""

    __tablename__ = "task_log_counts"

    bucket: datetime = Field(sa_column=sa.Column(UTCDateTime, primary_key=True))
    task_name: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    status: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    duration_count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    duration_sum: float = Field(sa_column=sa.Column(sa.Float, nullable=False))


class TaskDurationHistogram(SQLModel, table=True):
    """Rows per duration bin (`tasklens.rollups`), per hour (grain 1) and day (grain 24), task
    name and terminal status; kept by database triggers (migration 0005)."""

    __tablename__ = "task_duration_histogram"

    grain: int = Field(sa_column=sa.Column(sa.SmallInteger, primary_key=True))
    bucket: datetime = Field(sa_column=sa.Column(UTCDateTime, primary_key=True))
    task_name: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    status: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))
    bin: int = Field(sa_column=sa.Column(sa.SmallInteger, primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


class TaskOutcomeTotal(SQLModel, table=True):
    """How many log rows ever became each terminal status, per task name and duration bin
    (-1: no duration); only ever added to, so retention cannot make a Prometheus counter go
    down. Kept by database triggers (migration 0006)."""

    __tablename__ = "task_outcome_totals"

    task_name: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    status: str = Field(sa_column=sa.Column(sa.String(16), primary_key=True))
    bin: int = Field(sa_column=sa.Column(sa.SmallInteger, primary_key=True))
    count: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    duration_ms_sum: float = Field(sa_column=sa.Column(sa.Float, nullable=False))


class AnalysisResult(SQLModel, table=True):
    """The latest successful result of one analysis; replaced in one upsert, never cleared by
    a failed regeneration."""

    __tablename__ = "analysis_results"

    key: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.String(2000), nullable=False))
    params: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    result: dict[str, Any] = Field(sa_column=sa.Column(JSONType, nullable=False))
    task_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))


class AnalysisRefresh(SQLModel, table=True):
    """A forced refresh; its outcome and duration are read from the task's log row."""

    __tablename__ = "analysis_refreshes"

    id: int | None = serial_id()
    key: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    requested_by: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    requested_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    task_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    deduplicated: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))


class AlertFiring(SQLModel, table=True):
    """One stretch of time an alert rule fired (alerts/): open while `resolved_at` is null,
    one open row per rule at most (a partial unique index: two evaluators cannot both open
    it). `notified`: its `firing` webhook was sent (false: inside the rule's cooldown)."""

    __tablename__ = "alert_firings"
    __table_args__ = (
        sa.Index("ix_alert_firings_started", "started_at"),
        sa.Index(
            "ux_alert_firings_open",
            "rule",
            unique=True,
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        ),
    )

    id: int | None = serial_id()
    rule: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    started_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=sa.Column(UTCDateTime))
    value: float | None = Field(default=None, sa_column=sa.Column(sa.Float))  # the latest
    peak: float | None = Field(default=None, sa_column=sa.Column(sa.Float))
    threshold: float = Field(sa_column=sa.Column(sa.Float, nullable=False))
    link: str = Field(sa_column=sa.Column(sa.String(2000), nullable=False))
    notified: bool = Field(sa_column=sa.Column(sa.Boolean, nullable=False))
    detail: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))


class AuditEntry(SQLModel, table=True):
    """One operator action (audit.py): appended, never changed (triggers refuse UPDATE and
    DELETE; migration 0010)."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_at", "at", "id"),)

    id: int | None = serial_id()
    at: datetime = Field(default_factory=utcnow, sa_column=sa.Column(UTCDateTime, nullable=False))
    actor: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    action: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    target: str = Field(sa_column=sa.Column(sa.String(2000), nullable=False))
    count: int = Field(sa_column=sa.Column(sa.Integer, nullable=False))
    outcome: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    detail: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(JSONType))


class TaskDismissal(SQLModel, table=True):
    """A failed task taken out of the failure views (`tasklens.failures`): dismissed by an
    operator, or retried in bulk (`retried_as` links the new task to it). Its log rows stay
    for the retention period; only the views leave it out."""

    __tablename__ = "task_dismissals"

    task_id: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    dismissed_at: datetime = Field(sa_column=sa.Column(UTCDateTime, nullable=False))
    dismissed_by: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    retried_as: str | None = Field(default=None, sa_column=sa.Column(sa.String(64)))


# TaskLens's tables: on SQLite each is named with a prefix (database.OWN_NAMES).
TASKLENS_TABLES = frozenset(
    model.__tablename__
    for model in (
        TaskExecutionLog,
        ApiToken,
        TaskLogCount,
        TaskDurationHistogram,
        TaskOutcomeTotal,
        AnalysisResult,
        AnalysisRefresh,
        AlertFiring,
        AuditEntry,
        TaskDismissal,
    )
)
