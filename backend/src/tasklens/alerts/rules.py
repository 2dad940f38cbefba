"""The alerts file (`TASKLENS_ALERTS_FILE`): webhooks by name and rules, validated in full.

    {"webhooks": {"ops": "https://hooks.example/T0/B0/secret"},
     "rules": [{"name": "flaky-failing", "kind": "failure_rate", "task_name": "demo.flaky",
                "window_minutes": 5, "threshold": 0.5, "min_runs": 5, "notify": ["ops"],
                "cooldown_minutes": 10}]}

Every rule compares one value to its `threshold` (units per kind in `UNITS`): above it, the
rule fires. The file is checked at startup (a bad entry stops it, named: `rules[0].threshold:
…`) and re-read when it changes; a broken edit keeps the last good rules (engine.py).
A webhook URL may hold a secret (Slack's does): only `shown_url` leaves this module.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class AlertKind(enum.StrEnum):
    FAILURE_RATE = "failure_rate"
    NEW_FAILURE = "new_failure"
    QUEUE_AGE = "queue_age"
    NO_WORKERS = "no_workers"
    SLOW = "slow"
    LOG_LOSS = "log_loss"


# What `threshold` and the measured value are, per kind.
UNITS = {
    AlertKind.FAILURE_RATE: "share of finished runs that failed (0-1)",
    AlertKind.NEW_FAILURE: "this hour's count / the busiest earlier hour's (a new one: any)",
    AlertKind.QUEUE_AGE: "seconds the oldest waiting message has waited",
    AlertKind.NO_WORKERS: "seconds without a worker online",
    AlertKind.SLOW: "p95 duration of successful runs, ms",
    AlertKind.LOG_LOSS: "seconds the log has been losing rows or failing writes",
}

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    threshold: float = Field(ge=0)
    notify: tuple[Name, ...] = ()
    cooldown_minutes: float = Field(default=10, ge=0, le=10_080)


class FailureRateRule(_Rule):
    kind: Literal["failure_rate"]
    task_name: str | None = Field(default=None, min_length=1, max_length=255)  # None: all
    window_minutes: float = Field(default=5, gt=0, le=1440)
    min_runs: int = Field(default=1, ge=1)
    threshold: float = Field(ge=0, le=1)


class NewFailureRule(_Rule):
    kind: Literal["new_failure"]
    task_name: str | None = Field(default=None, min_length=1, max_length=255)
    window_minutes: float = Field(default=1440, gt=0, le=10_080)  # "seen before": in it
    threshold: float = Field(default=5, gt=1)  # a jump: this many times the busiest hour


class QueueAgeRule(_Rule):
    kind: Literal["queue_age"]
    queue: Literal["high", "default", "low"] | None = None  # None: the oldest of the three


class NoWorkersRule(_Rule):
    kind: Literal["no_workers"]


class SlowRule(_Rule):
    kind: Literal["slow"]
    task_name: str = Field(min_length=1, max_length=255)
    window_minutes: float = Field(default=15, gt=0, le=1440)
    min_runs: int = Field(default=1, ge=1)


class LogLossRule(_Rule):
    kind: Literal["log_loss"]


Rule = Annotated[
    FailureRateRule | NewFailureRule | QueueAgeRule | NoWorkersRule | SlowRule | LogLossRule,
    Field(discriminator="kind"),
]


class AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: dict[Name, str] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_names(self) -> AlertsConfig:
        for name, url in self.webhooks.items():
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"webhooks.{name}: must be an http:// or https:// URL")
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                raise ValueError(f"rules[{index}].name: {rule.name!r} is used twice")
            seen.add(rule.name)
            for hook in rule.notify:
                if hook not in self.webhooks:
                    raise ValueError(f"rules[{index}].notify: no webhook named {hook!r}")
        return self

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


class AlertsFileError(ValueError):
    """The message names the entry (`rules[0].threshold: …`), never a webhook's URL."""


def parse_alerts(text: str) -> AlertsConfig:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise AlertsFileError(f"not JSON: {exc}") from None
    try:
        return AlertsConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        # a union's member name ("rules[0].failure_rate.threshold") says nothing to the user
        where = where.removeprefix(".")
        for kind in AlertKind:
            where = where.replace(f".{kind.value}.", ".")
        message = first["msg"].removeprefix("Value error, ")
        raise AlertsFileError(f"{where}: {message}" if where else message) from None


def load_alerts(path: Path) -> AlertsConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise AlertsFileError(f"cannot read {path}: {exc.strerror}") from None
    return parse_alerts(text)


def shown_url(url: str) -> str:
    """What may be shown or logged of a webhook URL: `https://hooks.example/…`."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}/…"


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What tells a changed file: its modification time and size."""

    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: Path) -> FileStamp | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        return cls(stat.st_mtime_ns, stat.st_size)
