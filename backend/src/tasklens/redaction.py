"""Keep secrets out of everything TaskLens stores or broadcasts."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED = "***"
SECRET_KEY_PARTS = ("token", "password", "secret", "key", "auth")
MAX_DEPTH = 20


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def redact(value: Any, _depth: int = 0) -> Any:
    """Copy `value` with every secret-looking key's value replaced; very deep data is cut off."""
    if _depth > MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {
            key: REDACTED if is_secret_key(str(key)) else redact(item, _depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item, _depth + 1) for item in value]
    return value


_SECRET_QUERY = re.compile(
    r"(?P<name>[\w.-]*(?:" + "|".join(SECRET_KEY_PARTS) + r")[\w.-]*)=(?P<value>[^&\s\"']+)",
    re.IGNORECASE,
)


def redact_query(text: str) -> str:
    """`/ws?token=abc&x=1` → `/ws?token=***&x=1`: for URLs on their way into a log."""
    return _SECRET_QUERY.sub(lambda m: f"{m.group('name')}={REDACTED}", text)


class SecretQueryFilter(logging.Filter):
    """Uvicorn logs each request's path with its query string; the dashboard link and the
    WebSocket carry `?token=…` there, so every log line passes through this first."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """Uvicorn's own logging config with `SecretQueryFilter` on both of its handlers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["secrets"] = {"()": SecretQueryFilter}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("secrets")
    return config
