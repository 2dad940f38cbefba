"""Keep tokens out of uvicorn's access log: the dashboard link and the WebSocket carry
`?token=…` in the URL, which uvicorn logs with every request. A server concern, so not in
the library (`tasklens.tracking.redaction` keeps the rules it shares)."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote

from tasklens.tracking.redaction import DEFAULT, REDACTED

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
