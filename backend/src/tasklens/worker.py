"""Entry point for `taskiq worker tasklens.worker:broker` (what `tasklens worker` runs)."""

from __future__ import annotations

from tasklens.broker import build_broker
from tasklens.recorder import build_recorder
from tasklens.settings import get_settings

settings = get_settings()
if settings.redis_url is None:
    raise SystemExit(
        "tasklens: invalid setting TASKLENS_REDIS_URL: a worker process needs Redis "
        "(in the embedded mode `tasklens serve` runs the tasks itself)"
    )
broker = build_broker(
    settings,
    build_recorder(
        settings.database_url,
        settings.redis_url,
        flush_interval=settings.log_flush_interval_ms / 1000,
        batch_size=settings.log_batch_size,
        buffer_max=settings.log_buffer_max,
    ),
)
