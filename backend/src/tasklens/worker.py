"""Entry point for `taskiq worker tasklens.worker:broker` (what `tasklens worker` runs)."""

from __future__ import annotations

from tasklens.process import worker_broker
from tasklens.settings import get_settings

broker = worker_broker(get_settings())
