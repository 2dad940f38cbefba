"""Somebody else's TaskIQ app: its own broker, tasks and retry policy, plus TaskLens's
middleware (the only TaskLens line in it). Run by `taskiq worker thirdparty_app:broker`.

THIRDPARTY_BROKER picks the broker: `redis` (taskiq-redis's ListQueueBroker), `rabbitmq`
(taskiq-aio-pika's AioPikaBroker) or `nats` (taskiq-nats's PullBasedJetStreamBroker: a
JetStream stream keeps a message sent while no worker listens, and a durable pull consumer
shares the messages between workers; the plain NatsBroker is core NATS pub/sub, which drops
a message nobody is subscribed to). THIRDPARTY_NAME names its queue, exchange, subject and
stream, so that each test has its own."""

import asyncio
import os

from redis.asyncio import Redis
from taskiq import AsyncBroker, BrokerMessage, SmartRetryMiddleware, TaskiqDepends

from tasklens.middleware import TaskLensMiddleware
from tasklens.tracking.progress import Progress

REDIS_URL = os.environ["THIRDPARTY_REDIS_URL"]
KIND = os.environ.get("THIRDPARTY_BROKER", "redis")
NAME = os.environ.get("THIRDPARTY_NAME", "thirdparty")
RABBITMQ_URL = os.environ.get("THIRDPARTY_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
NATS_URL = os.environ.get("THIRDPARTY_NATS_URL", "nats://127.0.0.1:4222")


def _redis_broker() -> AsyncBroker:
    from taskiq_redis import ListQueueBroker

    # socket_timeout=None: with redis-py's default socket timeout, ListQueueBroker's BRPOP
    # (which blocks without a timeout) raises TimeoutError once the queue has been idle that
    # long and the worker process dies, taking a running task with it (taskiq-redis catches
    # only ConnectionError there).
    broker: AsyncBroker = ListQueueBroker(REDIS_URL, queue_name=NAME, socket_timeout=None)
    return broker


def _rabbitmq_broker() -> AsyncBroker:
    from taskiq_aio_pika import AioPikaBroker, Exchange, Queue
    from taskiq_aio_pika.queue import QueueType

    # A retry is sent with a `delay` label: AioPikaBroker refuses it without a delay queue
    # (messages wait there for their TTL, then go back to the exchange) or RabbitMQ's plugin.
    return AioPikaBroker(
        RABBITMQ_URL,
        exchange=Exchange(name=NAME),
        task_queues=[Queue(name=NAME, type=QueueType.CLASSIC)],
        dead_letter_queue=Queue(name=f"{NAME}.dead", type=QueueType.CLASSIC),
        delay_queue=Queue(name=f"{NAME}.delay", type=QueueType.CLASSIC),
    )


def _nats_broker() -> AsyncBroker:
    from taskiq_nats import PullBasedJetStreamBroker

    class StringHeadersJetStreamBroker(PullBasedJetStreamBroker):
        """taskiq-nats sends the labels as NATS headers, and nats-py takes only strings
        there: SmartRetryMiddleware's `_retries` (an int) and `delay` (a float) would fail
        the retry's send. The worker reads the labels from the message body, not these."""

        async def kick(self, message: BrokerMessage) -> None:
            await self.js.publish(
                self.subject,
                payload=message.message,
                headers={key: str(value) for key, value in message.labels.items()},
            )

    return StringHeadersJetStreamBroker(NATS_URL, subject=NAME, stream_name=NAME, durable=NAME)


BROKERS = {"redis": _redis_broker, "rabbitmq": _rabbitmq_broker, "nats": _nats_broker}

broker = BROKERS[KIND]().with_middlewares(
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
        attempt = await redis.incr(f"thirdparty:attempts:{NAME}:{invoice}")
    if attempt < 3:
        raise ConnectionError(f"payment gateway timeout (attempt {attempt})")
    return f"charged {invoice}"


@broker.task(task_name="billing.refund")
async def refund(invoice: str) -> str:
    """Always fails: no retry policy on this one."""
    raise ValueError(f"invoice {invoice} was never charged")


@broker.task(task_name="billing.reconcile")
async def reconcile(seconds: float) -> str:
    """Runs as long as it needs: TaskLens's task timeout is not this app's."""
    await asyncio.sleep(seconds)
    return "reconciled"


@broker.task(task_name="billing.export")
async def export(pages: int, progress: Progress = TaskiqDepends()) -> str:
    """Reports its progress page by page (and stops there when an operator cancels it)."""
    for page in range(pages):
        progress(page / pages, f"page {page + 1} of {pages}")
        await asyncio.sleep(0.2)
    return "exported"
