"""Entry point for `taskiq worker tasklens.worker:broker` (what `tasklens worker` runs)."""

from __future__ import annotations

from tasklens.broker import build_broker
from tasklens.coordination import RedisCoordinator
from tasklens.settings import get_settings
from tasklens.tracking.cancellation import CONTROL_CHANNEL, Cancellations
from tasklens.tracking.database import create_engine
from tasklens.tracking.event_bus import RedisEventBus
from tasklens.tracking.recorder import recorder_for

settings = get_settings()
if settings.redis_url is None:
    raise SystemExit(
        "tasklens: invalid setting TASKLENS_REDIS_URL: a worker process needs Redis "
        "(in the embedded mode `tasklens serve` runs the tasks itself)"
    )
broker = build_broker(
    settings,
    recorder_for(settings),
    RedisCoordinator(settings.redis_url),
    create_engine(settings.database_url, settings.db_schema),
    Cancellations(RedisEventBus(settings.redis_url, CONTROL_CHANNEL), settings.redis_url),
)
