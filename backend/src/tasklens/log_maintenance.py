"""Keeps the log's shape: day partitions created ahead, old days dropped after retention.

PostgreSQL does both in the functions of migration 0005 (one advisory lock, so any number of
processes may run this at once); SQLite has one table and a plain DELETE, whose triggers keep
the counts and histograms. Every API process runs it at startup and then hourly.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tasklens.tracking.background import BackgroundTask
from tasklens.tracking.database import own_name
from tasklens.tracking.models import utcnow

logger = logging.getLogger(__name__)
DAYS_AHEAD = 7
INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Retention:
    log_days: int
    failed_days: int

    def cutoffs(self, now: datetime) -> tuple[datetime, datetime]:
        """Rows created before the first go (failed ones kept); before the second, all go."""
        return now - timedelta(days=self.log_days), now - timedelta(days=self.failed_days)


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    partitions_created: int
    partitions_dropped: int
    rows_deleted: int


async def maintain(
    engine: AsyncEngine, retention: Retention, now: datetime | None = None
) -> MaintenanceReport:
    now = now or utcnow()
    keep_from, failed_keep_from = retention.cutoffs(now)
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            created = await conn.scalar(
                text("SELECT tasklens_ensure_log_partitions(:first, :last)"),
                {
                    "first": now.date() - timedelta(days=1),
                    "last": now.date() + timedelta(days=DAYS_AHEAD),
                },
            )
            dropped = await conn.scalar(
                text("SELECT tasklens_drop_log_partitions(:keep, :failed_keep)"),
                {"keep": keep_from, "failed_keep": failed_keep_from},
            )
            return MaintenanceReport(int(created or 0), int(dropped or 0), 0)
        log = own_name("task_execution_logs", engine.dialect)
        deleted = await conn.execute(
            text(
                f"DELETE FROM {log} WHERE created_at < :failed_keep "
                "OR (created_at < :keep AND status <> 'failed')"
            ),
            {"keep": _sqlite_time(keep_from), "failed_keep": _sqlite_time(failed_keep_from)},
        )
        return MaintenanceReport(0, 0, int(deleted.rowcount or 0))


def _sqlite_time(moment: datetime) -> str:
    """The naive-UTC text the log's timestamps are stored as on SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


class LogMaintenance:
    """Runs `maintain` now and every `interval` seconds; a failure is logged and retried at
    the next round (a missing partition only sends rows to the default partition)."""

    def __init__(
        self, engine: AsyncEngine, retention: Retention, interval: float = INTERVAL_SECONDS
    ) -> None:
        self._engine = engine
        self._retention = retention
        self._interval = interval
        self._background = BackgroundTask("log-maintenance")

    async def run_once(self) -> MaintenanceReport | None:
        try:
            report = await maintain(self._engine, self._retention)
        except Exception as exc:
            logger.warning("log maintenance failed: %s", exc)
            return None
        if report.partitions_created or report.partitions_dropped or report.rows_deleted:
            logger.info("log maintenance: %s", report)
        return report

    def start(self) -> None:
        self._background.start(self._loop)

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        await self._background.stop()
