"""One logging setup for `tasklens serve`, `worker` and `scheduler`, built from settings.

Every line has its time (ISO 8601, UTC), level, logger and message: as text by default, or
one JSON object per line with `TASKLENS_LOG_FORMAT=json`. Uvicorn gets the same dictConfig
(`log_config=`), and taskiq's worker and scheduler are started with taskiq's own logging
setup turned off, so every library's lines come out alike. Each handler scrubs secrets from
what it writes (`LogSecretsFilter`), whatever the format: a `token` in a URL's query, the
process's configured secrets (API tokens, the GitHub token, database and Redis passwords),
`Bearer …` credentials, URL passwords, values under a sensitive key (`'api_key': '…'`, as
taskiq prints a message at DEBUG) and well-known key shapes (`sk_live_…`). The
middleware's `TracebackFilter` (redaction.py) additionally scrubs the secrets of the task
that is running from taskiq's lines about it.

The JSON formatter is written here on the standard library (a few lines) rather than taken
from a package: the fields are fixed and the filters must run before it anyway.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from tasklens.process import settings_redactor
from tasklens.tracking.redaction import DEFAULT, REDACTED, Redactor, scrub_prefixed_keys

if TYPE_CHECKING:
    from tasklens.settings import Settings

WITHHELD = "<log line withheld: it could not be cleared of secrets>"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A logger whose lines are shown at any TASKLENS_LOG_LEVEL: what a person must see once
# (the first start's admin token is printed, not logged: see `announce`).
ANNOUNCE_LOGGER = "tasklens.announce"
# The attributes every LogRecord has: anything else on a record came from `extra=` (but
# uvicorn's `color_message`, the message again with terminal colours).
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


# A URL's query (after `?`) or path parameters (after `;`, which uvicorn logs as `%3B`), up
# to a space or a quote.
_QUERY = re.compile(r"(?P<start>[?;]|%3[bB])(?P<rest>[^\s\"'#]*)")
_PAIR_SEPARATOR = re.compile(r"[&;]")


def redact_query(text: str) -> str:
    """`/ws?token=abc&x=1` → `/ws?token=***&x=1`: for URLs on their way into a log. Each
    pair is read as a server would after percent-decoding (twice, for double encoding), in
    any case: `%74oken=`, `TOKEN=`, `token%3D…`, pairs after `;`, repeated names."""
    if "=" not in text and "%" not in text:
        return text
    return _QUERY.sub(lambda m: m.group("start") + _redact_pairs(m.group("rest")), text)


def _redact_pairs(query: str) -> str:
    pieces = _PAIR_SEPARATOR.split(query)
    separators = _PAIR_SEPARATOR.findall(query)
    out: list[str] = []
    for piece in pieces:
        decoded = unquote(unquote(piece.replace("+", " ")))
        name, equals, _value = decoded.partition("=")
        if decoded != piece and _PAIR_SEPARATOR.search(decoded):
            piece = _redact_pairs(decoded.replace("%", "%25"))  # `%26token%3D…` inside a value
        elif equals and DEFAULT.is_secret_key(name):
            piece = f"{name.strip()}={REDACTED}"
        elif not equals and DEFAULT.is_secret_key(decoded) and decoded != piece:
            piece = REDACTED  # an encoded pair with no readable equals sign: drop it whole
        out.append(piece)
    return "".join(p + s for p, s in zip(out, [*separators, ""], strict=True))


class UtcTextFormatter(logging.Formatter):
    """`2026-01-31T12:00:00.123Z WARNING tasklens.tracking.recorder: …`: UTC, so lines from
    several machines sort together; continuation lines indented."""

    converter = staticmethod(time.gmtime)
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        """Lines after the first (a multi-line message, a traceback) are indented: only a
        record's first line starts at the margin, with its time."""
        return super().format(record).replace("\n", "\n  ")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time`, `level`, `logger`, `message`, `exc_info` (the
    traceback as text) when there is one, and any field passed with `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and key not in line:
                line[key] = value
        return json.dumps(line, default=str, ensure_ascii=False)


def iso_utc(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LogSecretsFilter(logging.Filter):
    """On every handler: the message, traceback and `extra` strings of each record with
    `?token=…` and the other secrets this process knows replaced by `***`. It edits the
    record (every handler then writes the same clean text)."""

    def __init__(self, secrets: Sequence[str] = (), redact_keys: Iterable[str] = ()) -> None:
        super().__init__()
        self._redactor = Redactor(redact_keys, secrets)

    def _clean(self, text: str) -> str:
        text = self._redactor.scrub_text(redact_query(text), self._redactor.secrets)
        return scrub_prefixed_keys(self._redactor.redact_quoted_pairs(text))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = self._clean(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self._clean(record.exc_text)
            for key, value in list(record.__dict__.items()):
                if key not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                    setattr(record, key, self._clean(value))
        except Exception:  # never let a line through that could not be cleaned
            record.msg, record.args = WITHHELD, None
            record.exc_info = record.exc_text = None
        return True


def logging_config(settings: Settings) -> dict[str, Any]:
    """The dictConfig of a TaskLens process (also uvicorn's `log_config`): one stderr
    handler on the root logger, in the chosen format, scrubbing secrets; every other
    logger (uvicorn's, taskiq's, TaskLens's) propagates to it."""
    redactor = settings_redactor(settings)
    formatter = (
        {"()": "tasklens.log_setup.JsonFormatter"}
        if settings.log_format == "json"
        else {"()": "tasklens.log_setup.UtcTextFormatter"}
    )
    inherit: dict[str, Any] = {"handlers": [], "propagate": True, "level": "NOTSET"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "secrets": {
                "()": "tasklens.log_setup.LogSecretsFilter",
                "secrets": list(redactor.secrets),
                "redact_keys": list(settings.redact_keys),
            }
        },
        "formatters": {"tasklens": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "tasklens",
                "filters": ["secrets"],
            }
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's own config gives these handlers of their own; here they share ours
            "uvicorn": inherit,
            "uvicorn.error": inherit,
            "uvicorn.access": inherit,
            ANNOUNCE_LOGGER: {"level": "INFO", "propagate": True},
        },
    }


def configure_logging(settings: Settings) -> dict[str, Any]:
    """Applies `logging_config(settings)` to this process and returns it (for uvicorn).
    Python's `warnings` go through it too, so no bare line reaches stderr."""
    config = logging_config(settings)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    return config


def taskiq_level(settings: Settings, requested: str | None) -> str:
    """The level of taskiq's own loggers in a worker: `--log-level` when given; else WARNING,
    since INFO writes a line per task (a throughput cost), unless TASKLENS_LOG_LEVEL is
    DEBUG (everything) or ERROR/CRITICAL (quieter still)."""
    if requested is not None:
        return requested.upper()
    if settings.log_level == "DEBUG":
        return "DEBUG"
    levels = logging.getLevelNamesMapping()
    return max(settings.log_level, "WARNING", key=levels.__getitem__)


def announce(settings: Settings, text: str) -> None:
    """What a person must read once on stdout, e.g. the first start's admin token: plain
    text, or one JSON line (not through the handlers' filters: the token is the point)."""
    if settings.log_format == "json":
        record = logging.LogRecord(ANNOUNCE_LOGGER, logging.INFO, "", 0, text.strip(), None, None)
        print(JsonFormatter().format(record), flush=True)
    else:
        print(text, flush=True)
