"""Wires each kind of TaskLens process from its settings, in one place.

settings → database engine → recorder → broker (+ middlewares) → event stream → live hub or
scheduler. `serve_runtime` for `tasklens serve` (in the embedded mode it runs the tasks too),
`worker_broker` for `tasklens worker` (`taskiq worker tasklens.worker:broker`),
`schedules_scheduler` for `tasklens scheduler`. The library (`tasklens.tracking`) never imports
this module: a TaskIQ app wires its own broker and adds the middleware.
"""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from taskiq import AsyncBroker, TaskiqScheduler
from taskiq.middlewares import SmartRetryMiddleware

from tasklens.alerts.engine import AlertEngine, evaluator_id
from tasklens.alerts.failure_counts import failure_counts
from tasklens.alerts.measures import Measures, Sources
from tasklens.alerts.rules import load_alerts
from tasklens.alerts.webhooks import Notifier
from tasklens.analyses.service import AnalysisService
from tasklens.auth_throttle import AuthThrottle
from tasklens.broker import (
    REDELIVERY_MARGIN_SECONDS,
    STREAM_MAXLEN,
    DelayingInMemoryBroker,
    TaskLensStreamBroker,
)
from tasklens.coordination import Coordinator, InProcessCoordinator, RedisCoordinator
from tasklens.lease import Lease, RedisLease, SoleLease
from tasklens.live import LiveHub
from tasklens.log_maintenance import LogMaintenance, Retention
from tasklens.lost_messages import LostMessages
from tasklens.rate_limit import InProcessRateLimiter, RateLimiter, RedisRateLimiter
from tasklens.reaper import Reaper, ReaperMiddleware
from tasklens.runtime import Runtime
from tasklens.schedule_lease import FiringLease
from tasklens.schedules import FileScheduleSource
from tasklens.settings import Settings
from tasklens.tasks import register_tasks
from tasklens.tasks.analyses import TRANSIENT_ERRORS, AnalysisServices
from tasklens.tokens import TokenRegistry, stored_digests
from tasklens.tracking.cancellation import Cancellations
from tasklens.tracking.database import create_engine, session_factory
from tasklens.tracking.event_stream import EventStream, InProcessEventStream, RedisEventStream
from tasklens.tracking.middleware import TaskLensMiddleware
from tasklens.tracking.pubsub import InProcessPubSub, PubSub, RedisPubSub
from tasklens.tracking.recorder import LifecycleRecorder, recorder_for
from tasklens.tracking.redaction import Redactor, url_password
from tasklens.tracking.redis_connection import connect, reconnecting
from tasklens.tracking.redis_keys import (
    ALERTS_LEASE,
    AUTH_FAILURES_PREFIX,
    CONTROL_CHANNEL,
    DELAYED,
)


def serve_runtime(settings: Settings) -> Runtime:
    """`tasklens serve`: the API, its live hub and its broker; in the embedded mode (no Redis)
    the broker runs the tasks here too, with in-process events, coordination and control."""
    engine = create_engine(settings.database_url, settings.db_schema)
    events: EventStream
    coordinator: Coordinator
    limiter: RateLimiter
    refresh_limit, auth_limit = settings.refresh_rate_limit, settings.auth_failure_limit
    auth_limiter: RateLimiter
    control: PubSub
    cancellations: Cancellations | None
    if settings.embedded:
        events, coordinator = InProcessEventStream(), InProcessCoordinator()
        limiter = InProcessRateLimiter(refresh_limit)
        auth_limiter = InProcessRateLimiter(auth_limit)
        control = InProcessPubSub()
        cancellations = Cancellations(control)  # the tasks run in this process
    else:
        redis_url = settings.distributed_redis_url
        events = RedisEventStream(redis_url)
        coordinator = RedisCoordinator(redis_url)
        limiter = RedisRateLimiter(redis_url, refresh_limit)
        auth_limiter = RedisRateLimiter(redis_url, auth_limit, prefix=AUTH_FAILURES_PREFIX)
        control = RedisPubSub(redis_url, CONTROL_CHANNEL)
        cancellations = None  # workers listen; this process only asks
    recorder = recorder_for(settings, events=events, engine=engine)
    redis = None if settings.embedded else connect(settings.distributed_redis_url)
    broker = build_broker(settings, recorder, coordinator, engine, cancellations)
    tokens = TokenRegistry(engine, settings.api_tokens)
    return Runtime(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        events=events,
        recorder=recorder,
        broker=broker,
        hub=LiveHub(
            events,
            max_clients=settings.ws_max_connections,
            max_clients_per_token=settings.ws_max_connections_per_token,
        ),
        tokens=tokens,
        coordinator=coordinator,
        redis=redis,
        analyses=AnalysisService(settings, engine, coordinator, broker, limiter),
        control=control,
        maintenance=LogMaintenance(
            engine, Retention(settings.log_retention_days, settings.failed_retention_days)
        ),
        throttle=AuthThrottle(tokens, auth_limiter, auth_limit),
        alerts=alert_engine(settings, engine, redis, recorder),
    )


def alert_engine(
    settings: Settings, engine: AsyncEngine, redis: Redis | None, recorder: LifecycleRecorder
) -> AlertEngine | None:
    """The alerts of `serve` when TASKLENS_ALERTS_FILE is set: one evaluator per cluster
    (a Redis lease; the embedded process is the only one)."""
    if settings.alerts_file is None:
        return None
    lease: Lease = SoleLease() if redis is None else RedisLease(redis, evaluator_id(), ALERTS_LEASE)
    return AlertEngine(
        settings.alerts_file,
        Measures(Sources(engine, redis, settings.queue_name, recorder, failure_counts)),
        lease,
        Notifier(),
        interval=settings.alerts_interval_seconds,
        dashboard_url=settings.dashboard_base_url,
    )


def build_broker(
    settings: Settings,
    recorder: LifecycleRecorder,
    coordinator: Coordinator,
    engine: AsyncEngine,
    cancellations: Cancellations | None,
) -> AsyncBroker:
    """The broker of `serve` or `worker` for the run mode: the reaper, the retries and the
    middleware added, TaskLens's tasks registered."""
    broker: AsyncBroker
    if settings.embedded:
        broker = DelayingInMemoryBroker(
            grace_seconds=settings.shutdown_grace_seconds,
            max_async_tasks=settings.worker_concurrency,
            queue_name=settings.queue_name,
        )
    else:
        broker = TaskLensStreamBroker(
            settings.distributed_redis_url,
            queue_name=settings.queue_name,
            concurrency=settings.worker_concurrency,  # `tasklens worker`'s --max-async-tasks
            consumer_group_name="tasklens",
            consumer_id="0",  # a group created after the first kick still sees it
            maxlen=STREAM_MAXLEN,
            **reconnecting(),
            # Tasks are cut off at TASK_TIMEOUT_SECONDS (the `timeout` label), so a message
            # unacknowledged for longer belongs to a worker that is gone.
            idle_timeout=int((settings.longest_task_seconds + REDELIVERY_MARGIN_SECONDS) * 1000),
        )
    lost_messages = None
    if isinstance(broker, TaskLensStreamBroker):
        lost_messages = LostMessages(
            settings.distributed_redis_url,
            streams=broker.streams,
            group=broker.consumer_group_name,
            delayed_key=DELAYED,
            interval=settings.lost_check_interval_seconds,
        )
    reaper = Reaper(
        engine,
        # A running row older than this has nobody behind it: the task was cut off by then.
        max_task_seconds=settings.longest_task_seconds + REDELIVERY_MARGIN_SECONDS,
        redis_url=settings.redis_url,
        events=recorder.events,
        lost_messages=lost_messages,
        fleet=settings.queue_name,
    )
    broker.add_middlewares(
        ReaperMiddleware(reaper),  # first: stops before the recorder closes the event stream
        # Transient failures (network, GitHub 5xx) retry with exponential backoff + jitter.
        SmartRetryMiddleware(
            default_retry_count=settings.max_retries + 1,  # taskiq counts attempts
            default_delay=1.0,
            use_jitter=True,
            use_delay_exponent=True,
            max_delay_exponent=60,
            types_of_exceptions=TRANSIENT_ERRORS,
        ),
        TaskLensMiddleware(
            redis_url=settings.redis_url,
            recorder=recorder,
            cancellations=cancellations,
            redactor=settings_redactor(settings),
            result_max_chars=settings.result_max_chars,
            token_digests=lambda: stored_digests(engine),
            concurrency=settings.worker_concurrency,
        ),
    )
    register_tasks(broker, AnalysisServices(settings, coordinator, engine))
    return broker


def worker_broker(settings: Settings) -> AsyncBroker:
    """`tasklens worker`: the Redis Streams broker whose tasks this process runs."""
    if settings.embedded:
        raise SystemExit(
            "tasklens: invalid setting TASKLENS_REDIS_URL: a worker process needs Redis "
            "(in the embedded mode `tasklens serve` runs the tasks itself)"
        )
    return build_broker(
        settings,
        recorder_for(settings),
        RedisCoordinator(settings.distributed_redis_url),
        create_engine(settings.database_url, settings.db_schema),
        Cancellations(
            RedisPubSub(settings.distributed_redis_url, CONTROL_CHANNEL),
            settings.distributed_redis_url,
        ),
    )


def schedules_scheduler(settings: Settings) -> TaskiqScheduler:
    """`tasklens scheduler`: taskiq's scheduler over the schedules file, sending through a
    worker's broker (it runs no task)."""
    broker = worker_broker(settings)
    if settings.schedules_file is None:
        raise SystemExit(
            "tasklens: invalid setting TASKLENS_SCHEDULES_FILE: the scheduler needs a schedules "
            "file (see `tasklens/schedules.py` or the README)"
        )
    redis = connect(settings.distributed_redis_url)
    lease = FiringLease(redis, settings.queue_name)
    source = FileScheduleSource(settings.schedules_file, settings.queue_name, lease, redis)
    return TaskiqScheduler(broker, sources=[source])


def settings_redactor(settings: Settings) -> Redactor:
    """The redactor of a TaskLens process: its extra key words, and as secrets its API
    tokens, its metrics token, its GitHub token, its database and Redis passwords and its
    alert webhooks' URLs."""
    tokens = [entry.token for entry in settings.api_tokens]
    github = settings.github_token.get_secret_value() if settings.github_token else None
    metrics = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    webhooks = (
        list(load_alerts(settings.alerts_file).webhooks.values()) if settings.alerts_file else []
    )
    return Redactor(
        settings.redact_keys,
        [
            *tokens,
            github,
            metrics,
            url_password(settings.database_url),
            url_password(settings.redis_url),
            *webhooks,  # may hold a secret in the path (webhooks.py shows scheme://host/…)
        ],
    )
