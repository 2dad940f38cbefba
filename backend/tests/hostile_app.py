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


@broker.task(task_name="hostile.send_invoice")
async def send_invoice(invoice_id: str, api_key: str) -> dict[str, str]:
    """The README's example, called positionally; it fails for a `refuse` invoice."""
    if invoice_id == "refuse":
        raise RuntimeError(f"gateway refused key {api_key} for {invoice_id}")
    return {"invoice": invoice_id, "api_key": api_key, "note": f"charged with {api_key}"}


class Unprintable(Exception):
    """An exception whose `__str__` and `__repr__` raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


class Abort(BaseException):
    """Not an Exception: `except Exception` does not catch it."""


class Opaque:
    """A result JSON cannot hold and neither str() nor repr() can print."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    def __repr__(self) -> str:
        raise RuntimeError("no repr either")


@broker.task(task_name="hostile.unprintable")
async def unprintable() -> None:
    raise Unprintable


@broker.task(task_name="hostile.abort")
async def abort() -> None:
    raise Abort("stop right there")


@broker.task(task_name="hostile.opaque")
async def opaque() -> Any:
    return Opaque()


@broker.task(task_name="hostile.huge")
async def huge(megabytes: int) -> Any:
    return {"api_key": "never-stored-key-123", "blob": "y" * (megabytes * 1_000_000)}
