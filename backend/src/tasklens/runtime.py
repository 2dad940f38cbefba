"""Everything one `tasklens serve` process runs (built by `process.serve_runtime`), and
its start, health checks and stop.

request → broker (enqueue) → worker → middleware → recorder → store + event stream → live hub
→ WebSocket. The embedded mode wires the same parts in-process; the distributed mode puts
Redis between them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from taskiq import AsyncBroker

from tasklens import audit, migrate
from tasklens.alerts.engine import AlertEngine
from tasklens.analyses.service import AnalysisService
from tasklens.auth_throttle import AuthThrottle
from tasklens.coordination import Coordinator
from tasklens.database_file import DatabaseFile, claim, claim_postgres, sqlite_path
from tasklens.live import LiveHub
from tasklens.log_maintenance import LogMaintenance
from tasklens.settings import Settings
from tasklens.tokens import TokenRegistry
from tasklens.tracking.cancellation import request_cancel
from tasklens.tracking.event_stream import EventStream
from tasklens.tracking.pubsub import PubSub
from tasklens.tracking.recorder import LifecycleRecorder

logger = logging.getLogger(__name__)

# How long an embedded enqueue waits for its `pending` rows to be committed before a 503.
ACCEPT_TIMEOUT_SECONDS = 10.0


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    events: EventStream
    recorder: LifecycleRecorder
    broker: AsyncBroker
    hub: LiveHub
    tokens: TokenRegistry
    coordinator: Coordinator
    redis: Redis | None
    analyses: AnalysisService
    control: PubSub
    maintenance: LogMaintenance
    throttle: AuthThrottle
    alerts: AlertEngine | None = None  # when TASKLENS_ALERTS_FILE is set
    first_start_token: str | None = None
    database_file: DatabaseFile | None = None  # the embedded mode's SQLite file, locked
    _postgres_lock: asyncpg.Connection | None = None  # the embedded mode on PostgreSQL

    async def start(self) -> None:
        if self.settings.is_postgres:
            await check_schema(self.engine, self.settings.db_schema)
            if self.settings.embedded:
                self._postgres_lock = await claim_postgres(self.settings.database_url)
        else:
            path = sqlite_path(self.settings.database_url)
            if self.settings.embedded and path is not None:
                self.database_file = claim(path)  # before the migration creates the file
            await asyncio.to_thread(
                migrate.upgrade, self.settings.database_url, schema=self.settings.db_schema
            )
            if self.database_file is not None:
                self.database_file.opened(self.engine)
        self.maintenance.start()
        self.first_start_token = await self.tokens.first_start_token()
        if self.first_start_token is not None:
            await audit.write(
                self.engine,
                "tasklens (first start)",
                audit.AuditAction.TOKEN_CREATE,
                "admin",
                audit.AuditRecord(detail={"role": "operator"}),
                "ok",
            )
        await self.broker.startup()
        await self.hub.start()
        if self.alerts is not None:
            self.alerts.start()

    async def accepted(self) -> None:
        """Called before a 202. The embedded queue is this process's memory: what it
        accepted is logged `pending` (committed) before the answer, so a crash right after
        leaves rows for the next start's reaper to close, not nothing. Raises NotWritten
        (a 503) when the database does not take them. The distributed queue is Redis."""
        if self.settings.embedded:
            await self.recorder.written(ACCEPT_TIMEOUT_SECONDS)

    async def cancel_task(self, task_id: str) -> None:
        await request_cancel(self.control, self.redis, task_id)

    async def stop(self) -> None:
        if self.alerts is not None:
            await self.alerts.stop()
        await self.maintenance.stop()
        await self.hub.stop()
        await self.broker.shutdown()  # flushes the recorder through the middleware
        await self.coordinator.close()
        await self.control.close()
        if self.analyses.refresh_limiter is not None:
            await self.analyses.refresh_limiter.close()
        await self.throttle.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
        if self.database_file is not None:
            self.database_file.release()
            self.database_file = None
        if self._postgres_lock is not None:
            await self._postgres_lock.close()
            self._postgres_lock = None

    async def check_database(self) -> str:
        """ "ok", "down" (unreachable), or what is wrong with the embedded SQLite file
        (database_file.py): a removed or replaced file still answers through the open
        connections, so a query alone would say ok."""
        try:
            async with asyncio.timeout(3), self.engine.connect() as conn:
                if conn.dialect.name == "postgresql":  # the query alone, without a BEGIN
                    # and a ROLLBACK around it: round trips, each a wait for this loop's
                    # turn on a busy process (SQLite's is in-process: nothing to save)
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("SELECT 1")
        except Exception as exc:
            logger.warning("health: database unreachable: %s", exc)
            return "down"
        if self.database_file is not None:
            return await self.database_file.problem() or "ok"
        return "ok"

    async def check_redis(self) -> bool | None:
        """None in the embedded mode, where there is no Redis to need."""
        if self.redis is None:
            return None
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), 3))
        except Exception as exc:
            logger.warning("health: redis unreachable: %s", exc)
            return False


async def check_schema(engine: AsyncEngine, schema: str | None = None) -> None:
    """PostgreSQL is migrated by `tasklens migrate` (a one-shot job in compose), not by each
    API process; starting against an older schema would only fail at the first write."""
    head = migrate.head_revision()
    async with engine.connect() as conn:
        current = await conn.run_sync(migrate.current_revision, schema)
    if current != head:
        raise migrate.SchemaOutOfDate(
            f"the database is at migration {current or 'none'}, this TaskLens needs {head}: "
            "run `tasklens migrate`"
        )
