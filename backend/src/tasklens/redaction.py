"""Keep secrets out of everything TaskLens stores or broadcasts."""

from __future__ import annotations

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
