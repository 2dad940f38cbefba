"""A TaskIQ app whose tasks carry hostile values: SQL, HTML, emoji, right-to-left text, NUL
bytes, deep and huge data. Run by `taskiq worker hostile_app:broker` in tests/test_hostile.py."""

import os
from typing import Any

from taskiq_redis import ListQueueBroker

from tasklens.middleware import TaskLensMiddleware

REDIS_URL = os.environ["HOSTILE_REDIS_URL"]
HOSTILE_TEXT = (
    '\'; DROP TABLE task_execution_logs;-- <script>alert("x")</script> '
    "📦🔥 שלום עולם \u202eevil\u202c NUL:\x00: \\u0000 done"
)
HOSTILE_NAME = "hostile.<b>'; DELETE FROM api_tokens;--📦 שלום</b>"

broker = ListQueueBroker(REDIS_URL, queue_name="hostile").with_middlewares(
    TaskLensMiddleware(database_url=os.environ["HOSTILE_DATABASE_URL"], redis_url=REDIS_URL),
)


@broker.task(task_name="hostile.fail")
async def fail(message: str) -> None:
    raise ValueError(message)


@broker.task(task_name=HOSTILE_NAME)
async def echo(value: Any) -> Any:
    return value


@broker.task(task_name="hostile.deep")
async def deep(depth: int) -> Any:
    """Returns a list nested `depth` levels deep: too deep for json, orjson and repr."""
    root: list[Any] = []
    current = root
    for _ in range(depth):
        inner: list[Any] = []
        current.append(inner)
        current = inner
    return root
