"""Somebody else's TaskIQ app: its own broker, tasks and retry policy, plus TaskLens's
middleware (the only TaskLens line in it). Run by `taskiq worker thirdparty_app:broker`."""

import asyncio
import os

from redis.asyncio import Redis
from taskiq import SmartRetryMiddleware
from taskiq_redis import ListQueueBroker

from tasklens.middleware import TaskLensMiddleware

REDIS_URL = os.environ["THIRDPARTY_REDIS_URL"]

# socket_timeout=None: with redis-py's default socket timeout, ListQueueBroker's BRPOP (which
# blocks without a timeout) raises TimeoutError once the queue has been idle that long and the
# worker process dies, taking a running task with it (taskiq-redis catches only
# ConnectionError there).
broker = ListQueueBroker(REDIS_URL, queue_name="thirdparty", socket_timeout=None).with_middlewares(
    SmartRetryMiddleware(default_retry_count=3, default_delay=0.1),
    TaskLensMiddleware(database_url=os.environ["THIRDPARTY_DATABASE_URL"], redis_url=REDIS_URL),
)


@broker.task(task_name="billing.add")
async def add(a: int, b: int) -> int:
    return a + b


@broker.task(task_name="billing.charge", retry_on_error=True, max_retries=3)
async def charge(invoice: str, card_token: str) -> str:
    """Fails on its first two attempts, as a flaky payment API would."""
    async with Redis.from_url(REDIS_URL) as redis:
        attempt = await redis.incr(f"thirdparty:attempts:{invoice}")
    if attempt < 3:
        raise ConnectionError(f"payment gateway timeout (attempt {attempt})")
    return f"charged {invoice}"


@broker.task(task_name="billing.reconcile")
async def reconcile(seconds: float) -> str:
    """Runs as long as it needs: TaskLens's task timeout is not this app's."""
    await asyncio.sleep(seconds)
    return "reconciled"
