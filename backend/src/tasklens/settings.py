"""Typed settings, read from `TASKLENS_*` environment variables and `.env`.

One object decides the run mode: no `REDIS_URL` means the embedded mode (in-process broker,
events and coordination); a `REDIS_URL` means the distributed mode.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from tasklens.analyses.reach import AllowedHosts
from tasklens.rate_limit import Limit
from tasklens.tokens import ConfiguredToken, parse_token_entry
from tasklens.tracking.settings import DEFAULT_DATA_DIR, TrackingSettings

LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
METRICS_TOKEN_MIN_CHARS = 24  # a scraper's token sits in a config file: no short guessable one


class Settings(TrackingSettings):
    """The server's settings: the library's (`TrackingSettings`, defined there once) and
    the rest (same `TASKLENS_` prefix and `.env`)."""

    host: str = "127.0.0.1"
    api_workers: int = Field(
        default=1, ge=1, le=64, description="API processes `tasklens serve` starts"
    )
    port: int = Field(default=8000, ge=1, le=65535)
    task_timeout_seconds: int = Field(default=300, ge=1, le=86_400)
    log_retention_days: int = Field(
        default=30, ge=1, le=3650, description="Log rows older than this are dropped"
    )
    failed_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Failed rows are kept this long (at least log_retention_days)",
    )
    api_tokens: Annotated[list[ConfiguredToken], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated `token`, `name:token` or `name:role:token` entries.",
    )
    data_dir: Path = DEFAULT_DATA_DIR
    queue_name: str = "tasklens"
    worker_concurrency: int = Field(default=100, ge=1, le=10_000)
    shutdown_grace_seconds: float = Field(
        default=10,
        ge=0,
        le=3600,
        description="Embedded mode: on SIGTERM, running tasks get this long to finish; "
        "then they are stopped and logged failed (`tasklens worker` has --grace)",
    )
    lost_check_interval_seconds: float = Field(
        default=10,
        ge=0.1,
        le=3600,
        description="Distributed mode: how often one process looks for `pending` rows whose "
        "message Redis lost (closed as failed after two consecutive looks at least this and "
        "10 s apart)",
    )
    repo_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated directories whose git repositories may be analysed "
        "by local path (none by default).",
    )
    git_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated host names, addresses or networks (CIDR) of internal git "
        "servers a repository analysis may reach although they are loopback, private or "
        "link-local (none by default).",
    )
    report_stale_after_seconds: int = Field(default=3600, ge=1)
    max_retries: int = Field(default=3, ge=0, le=20)
    bulk_retry_max: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="The most failed tasks one bulk retry sends again (newest first)",
    )
    max_subject_concurrent_tasks: int = Field(default=1, ge=1, le=100)
    refresh_rate_limit: Annotated[Limit, NoDecode, BeforeValidator(Limit.parse_setting)] = Field(
        default=Limit(5, 300), description="Forced refreshes per token: N/SECONDS, sliding window"
    )
    ws_max_connections: int = Field(
        default=2000, ge=1, le=100_000, description="WebSockets one API process keeps open"
    )
    ws_max_connections_per_token: int = Field(
        default=100, ge=1, le=100_000, description="WebSockets one token keeps open per process"
    )
    ws_send_timeout_seconds: float = Field(
        default=10,
        gt=0,
        le=300,
        description="A WebSocket client that takes longer to take a send is dropped",
    )
    auth_failure_limit: Annotated[Limit, NoDecode, BeforeValidator(Limit.parse_setting)] = Field(
        default=Limit(10, 60),
        description="Failed token attempts per client address: N/SECONDS, then 429",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated proxy addresses whose X-Forwarded-For is believed",
    )
    schedules_file: Path | None = Field(
        default=None, description="JSON file of scheduled refreshes (`tasklens scheduler`)"
    )
    alerts_file: Path | None = Field(
        default=None,
        description="JSON file of alert rules and webhooks (checked at startup, re-read "
        "when it changes)",
    )
    alerts_interval_seconds: float = Field(
        default=15, ge=0.1, le=3600, description="How often the alert rules are evaluated"
    )
    public_url: str | None = Field(
        default=None,
        description="The dashboard's address as its users reach it, for the links in alert "
        "notifications (default: http://HOST:PORT)",
    )
    github_api_url: str = "https://api.github.com"
    github_token: SecretStr | None = None
    metrics_token: SecretStr | None = Field(
        default=None,
        description="A token that can read GET /metrics and nothing else (for Prometheus); "
        "at least 24 characters",
    )
    log_level: LogLevel = Field(
        default="INFO", description="Lowest level logged by serve, worker and scheduler"
    )
    log_format: LogFormat = Field(
        default="text", description="text: time, level, logger, message; json: one object a line"
    )
    _allowed_git_hosts: AllowedHosts = PrivateAttr(default_factory=AllowedHosts)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            value = value.strip()
            return value.upper() if info.field_name == "log_level" else value.lower()
        return value

    @field_validator("repo_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(part.strip()) for part in value.split(",") if part.strip()]
        return value

    @field_validator("repo_roots")
    @classmethod
    def _absolute_roots(cls, value: list[Path]) -> list[Path]:
        for root in value:
            if not root.is_absolute():
                raise ValueError(f"{root} is not an absolute path")
        return value

    @field_validator("git_allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry} is not an IP address or network") from None
        return value

    @field_validator("schedules_file")
    @classmethod
    def _readable_schedules(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        from tasklens.schedules import load_schedules  # validated now: a typo stops startup

        load_schedules(value)
        return value

    @field_validator("alerts_file")
    @classmethod
    def _readable_alerts(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        from tasklens.alerts.rules import load_alerts  # validated now: a typo stops startup

        load_alerts(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _public_http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value.rstrip("/")

    @field_validator("github_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value.rstrip("/")

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: object) -> object:
        """Parsed here once: the rest of TaskLens reads `ConfiguredToken`s."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            return [
                parse_token_entry(raw, i) if isinstance(raw, str) else raw
                for i, raw in enumerate(value)
            ]
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < METRICS_TOKEN_MIN_CHARS:
            raise ValueError(f"needs at least {METRICS_TOKEN_MIN_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _parse_git_hosts(self) -> Settings:
        try:
            self._allowed_git_hosts = AllowedHosts.parse(self.git_allowed_hosts)
        except ValueError as exc:
            raise ValueError(f"git_allowed_hosts: {exc}") from None
        return self

    @model_validator(mode="after")
    def _failed_kept_at_least_as_long(self) -> Settings:
        if self.failed_retention_days < self.log_retention_days:
            raise ValueError(
                f"failed_retention_days: {self.failed_retention_days} is less than "
                f"log_retention_days ({self.log_retention_days}); failed rows are kept at "
                "least as long as the others"
            )
        return self

    @model_validator(mode="after")
    def _one_process_when_embedded(self) -> Settings:
        if self.api_workers > 1 and self.embedded:
            raise ValueError(
                "api_workers: more than one API process needs TASKLENS_REDIS_URL (the "
                "embedded mode keeps its broker and coordination in one process)"
            )
        return self

    @property
    def subject_slot_wait_seconds(self) -> float:
        """How long an analysis waits in a worker for its subject's slot before it sends
        itself back to the queue (so no message sits unacknowledged for too long)."""
        return min(30.0, self.task_timeout_seconds / 2)

    @property
    def longest_task_seconds(self) -> float:
        return self.task_timeout_seconds + self.subject_slot_wait_seconds

    @property
    def allowed_git_hosts(self) -> AllowedHosts:
        """`git_allowed_hosts` as parsed when the settings were read."""
        return self._allowed_git_hosts

    @property
    def dashboard_base_url(self) -> str:
        """Where the dashboard's pages are, for links sent out (alert notifications)."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def embedded(self) -> bool:
        """The run mode, decided here only: without a Redis URL one process runs it all."""
        return self.redis_url is None

    @property
    def distributed_redis_url(self) -> str:
        """The Redis URL, for code that runs only when not `embedded` (checked first)."""
        assert self.redis_url is not None, "the embedded mode has no Redis"
        return self.redis_url

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


class SettingsError(SystemExit):
    """Raised instead of a traceback: startup stops with one line naming the variable."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["loc"]:
            field = str(first["loc"][0])
        else:  # a check across fields names the field first: "api_workers: …"
            field, _, message = message.partition(": ")
        line = f"tasklens: invalid setting TASKLENS_{field.upper()}: {message}"
        print(line, file=sys.stderr)
        raise SettingsError(2) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
