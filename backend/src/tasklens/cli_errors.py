"""Failures an operator can fix, told in one line instead of a traceback.

`tasklens` commands meet an unreachable database or Redis, a database nobody migrated, a
schema behind the code, or a migration refused (migrate.MigrationRefused). Each becomes
`tasklens: <what> (<where>)`, exit code 1, with every password taken out: of the URL shown
and of the driver's own text. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import asyncpg
import redis.exceptions
import sqlalchemy.exc

from tasklens.migrate import MigrationRefused, SchemaOutOfDate
from tasklens.settings import Settings

HIDDEN = "***"
KNOWN_FAILURES: tuple[type[BaseException], ...] = (
    OSError,
    sqlalchemy.exc.SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    redis.exceptions.RedisError,
    SchemaOutOfDate,
    MigrationRefused,
)
_MISSING_TABLE = ("no such table", 'relation "')  # SQLite's, PostgreSQL's


def _passwords(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        found = [parts.password] if parts.password else []
    except ValueError:
        return []
    found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    return [p for secret in found for p in {secret, unquote(secret)}]


def safe_url(url: str) -> str:
    """`url` with its password, in the userinfo or as `?password=`, replaced by ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return HIDDEN  # unparseable: show nothing rather than a secret
    netloc = parts.netloc
    if password is not None:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}:{HIDDEN}@{host}"
    query = urlencode(
        [(k, HIDDEN if k.lower() == "password" else v) for k, v in parse_qsl(parts.query)],
        safe="*",
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig  # without the statement and the "Background on this error" link
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def describe(exc: BaseException, settings: Settings) -> str:
    """One line, without any configured password, for a failure in KNOWN_FAILURES."""
    database = safe_url(settings.database_url)
    reason = _reason(exc)
    if isinstance(exc, SchemaOutOfDate | MigrationRefused):
        line = reason
    elif isinstance(exc, redis.exceptions.RedisError):
        where = safe_url(settings.redis_url or "")
        line = f"cannot reach Redis ({where}): {reason}"
    elif any(marker in reason for marker in _MISSING_TABLE):
        line = f"the database has no TaskLens tables ({database}): run `tasklens migrate`"
    elif isinstance(exc, OSError) and exc.filename is not None:  # e.g. `openapi --output`
        line = f"{exc.strerror}: {exc.filename}"
    elif isinstance(exc, OSError):
        line = f"cannot reach the database ({database}): {reason}"
    else:
        line = f"database error ({database}): {reason}"
    for secret in _passwords(settings.database_url) + _passwords(settings.redis_url or ""):
        line = line.replace(secret, HIDDEN)
    return f"tasklens: {line}"
