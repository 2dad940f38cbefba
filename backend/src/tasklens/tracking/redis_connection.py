"""Redis clients that carry on after a Redis restart.

A pooled connection to a Redis that restarted fails its next command ("Connection closed by
server"), and redis-py retries nothing on clients made by `from_url`. So every client
TaskLens opens retries a connection error 3 times with jittered backoff (50 ms up to 1 s):
the first request after a restart gets a fresh connection instead of a 503. Timeouts are
not retried (the command may have run), and a Redis that is really down still fails fast.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError


def reconnecting() -> dict[str, Any]:
    """Connection options for `Redis.from_url` or a connection pool."""
    return {
        "retry": Retry(
            ExponentialWithJitterBackoff(base=0.05, cap=1.0),
            3,
            supported_errors=(RedisConnectionError,),
        )
    }


def connect(url: str, **options: Any) -> Redis:
    """A client for `url` with TaskLens's timeouts (overridable) and reconnection."""
    return Redis.from_url(
        url, **{"socket_connect_timeout": 2, "socket_timeout": 5, **options, **reconnecting()}
    )
