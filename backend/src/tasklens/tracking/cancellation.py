"""Cancelling tasks across processes.

An operator's cancel is published on a control channel (Redis pub/sub, or in-process) that
every worker listens to, and remembered for a day in a Redis sorted set that a worker reads
when it starts. A worker that runs the task cancels its asyncio task (and the task's own
progress calls raise at the next progress point); a worker that receives a cancelled task
later never runs its body: the middleware gives it a zero timeout before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from redis.asyncio import Redis

from tasklens.tracking.background import BackgroundTask
from tasklens.tracking.pubsub import PubSub
from tasklens.tracking.redis_connection import connect
from tasklens.tracking.redis_keys import CANCELLED

logger = logging.getLogger(__name__)

REMEMBER_SECONDS = 86_400


class Cancellations:
    """Worker side: the task ids cancelled lately, and the asyncio tasks running here."""

    def __init__(self, control: PubSub, redis_url: str | None = None) -> None:
        self._control = control
        self._redis_url = redis_url
        self._cancelled: dict[str, float] = {}
        self._running: dict[str, asyncio.Task[object]] = {}
        self._listener = BackgroundTask("tasklens-cancels")

    async def start(self) -> None:
        if self._listener.running:
            return
        ready = asyncio.Event()
        self._listener.start(lambda: self._listen(ready))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 5)
        if self._redis_url is not None:  # cancels sent while this worker was not running
            try:
                async with connect(self._redis_url) as redis:
                    since = time.time() - REMEMBER_SECONDS
                    recent = await redis.zrangebyscore(CANCELLED, since, "+inf")
                    for task_id in recent:
                        if isinstance(task_id, bytes):
                            self._cancelled[task_id.decode()] = time.time()
            except Exception as exc:
                logger.warning("could not load recent cancels: %s", exc)

    async def stop(self) -> None:
        await self._listener.stop()

    async def _listen(self, ready: asyncio.Event) -> None:
        async for batch in self._control.subscribe(ready):
            for message in batch:
                if message.get("type") == "cancel" and isinstance(message.get("task_id"), str):
                    self.cancel_here(message["task_id"])

    def cancel_here(self, task_id: str) -> None:
        self._forget_old()
        self._cancelled[task_id] = time.time()
        running = self._running.get(task_id)
        if running is not None and not running.done():
            running.cancel()

    def running_tasks(self) -> list[asyncio.Task[object]]:
        return [task for task in self._running.values() if not task.done()]

    def running_ids(self) -> list[str]:
        return [task_id for task_id, task in self._running.items() if not task.done()]

    def interrupt(self, task_id: str) -> None:
        """Stop the task running here without cancelling it (it is handed to another worker)."""
        running = self._running.get(task_id)
        if running is not None and not running.done():
            running.cancel()

    def is_cancelled(self, task_id: str) -> bool:
        return task_id in self._cancelled

    def started(self, task_id: str) -> bool:
        """The task starts running here, in this asyncio task; False (and not started) if it
        was cancelled already. One call where a worker's every task would make two."""
        if task_id in self._cancelled:
            return False
        current = asyncio.current_task()
        if current is not None:
            self._running[task_id] = current
        return True

    def finished(self, task_id: str) -> None:
        running = self._running.pop(task_id, None)
        if running is not None and task_id in self._cancelled:
            running.uncancel()  # the cancel was delivered and handled: the worker goes on

    def _forget_old(self) -> None:
        if len(self._cancelled) > 100_000:
            horizon = time.time() - REMEMBER_SECONDS
            self._cancelled = {k: t for k, t in self._cancelled.items() if t > horizon}


async def request_cancel(control: PubSub, redis: Redis | None, task_id: str) -> None:
    """API side: remember the cancel (for workers that start later) and tell every worker."""
    if redis is not None:
        now = time.time()
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zadd(CANCELLED, {task_id: now})
            pipe.zremrangebyscore(CANCELLED, "-inf", now - REMEMBER_SECONDS)
            await pipe.execute()
    await control.publish([{"type": "cancel", "task_id": task_id}])
