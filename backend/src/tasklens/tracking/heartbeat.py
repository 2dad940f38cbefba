"""Worker heartbeats: each worker process says every few seconds that it is alive and which
tasks it runs, in one Redis hash that the API reads for `GET /api/v1/queues` and the reaper
reads to tell a lost task from a long one (a foreign app's task has no TaskLens timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from tasklens.tracking.background import BackgroundTask
from tasklens.tracking.redis_connection import connect
from tasklens.tracking.redis_keys import WORKER_HELD_PREFIX, WORKERS

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
OFFLINE_AFTER_SECONDS = 30.0
FORGET_AFTER_SECONDS = 3600.0
# The ids a heartbeat lists of running tasks (oldest first: the reaper asks about old ones)
# and of held messages (past that, the lost-message check cannot judge and skips).
MAX_LISTED_TASKS = 1_000
# A stopping worker's goodbye (its entry removed) waits at most this for Redis: without it
# the reaper declares the worker offline a little later, which is all the goodbye saves.
GOODBYE_TIMEOUT_SECONDS = 2.0


# Held: delivered to this worker, not yet acknowledged (running, or prefetched).
Held = Callable[[int], tuple[list[str], int]]
# This worker's own recorder losses (buffered rows, rows dropped, failed writes): they live
# in the worker's memory, and the heartbeat is how GET /metrics sees them.
RecorderFigures = Callable[[], dict[str, int]]
# What the workers list shows of this worker besides its liveness: tasks processed and failed
# since it started, its concurrency and the queues it consumes (TaskLensMiddleware.profile).
Profile = Callable[[], dict[str, object]]


def describe_self(
    worker_id: str,
    started_at: datetime,
    running: int,
    tasks: Sequence[str] = (),
    profile: dict[str, object] | None = None,
) -> dict[str, object]:
    return {
        "id": worker_id,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": started_at.isoformat(),
        "last_seen": time.time(),
        "running": running,
        "tasks": list(tasks),
        **(profile or {}),
    }


class Heartbeat:
    def __init__(
        self,
        redis_url: str,
        worker_id: str,
        running: Callable[[], Sequence[str]],
        held: Held | None = None,
        recorder: RecorderFigures | None = None,
        profile: Profile | None = None,
        started_at: datetime | None = None,
    ) -> None:
        """`running` gives the ids of the tasks this worker runs, oldest first; `held` those
        of the messages its broker delivered here and this worker has not acknowledged;
        `started_at` when the counts in `profile` began (the middleware's start)."""
        self._redis: Redis = connect(redis_url)
        self._worker_id = worker_id
        self._running = running
        self._held = held
        self._recorder = recorder
        self._profile = profile
        self._started_at = started_at or datetime.now(UTC)
        self._background = BackgroundTask("tasklens-heartbeat")

    async def start(self) -> None:
        self._background.start(self._beat)

    async def stop(self) -> None:
        await self._background.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(GOODBYE_TIMEOUT_SECONDS):
                await self._redis.hdel(WORKERS, self._worker_id)  # a clean exit says so
                await self._redis.delete(WORKER_HELD_PREFIX + self._worker_id)
        await self._redis.aclose()

    async def _beat(self) -> None:
        while True:
            tasks = self._running()
            me = describe_self(
                self._worker_id,
                self._started_at,
                len(tasks),
                tasks[:MAX_LISTED_TASKS],
                self._profile() if self._profile is not None else None,
            )
            held = self._held(MAX_LISTED_TASKS) if self._held is not None else ([], 0)
            if self._recorder is not None:
                me["recorder"] = self._recorder()
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hset(WORKERS, self._worker_id, json.dumps(me))
                    # Its own key, read only by the lost-message check: the hash stays small.
                    pipe.set(
                        WORKER_HELD_PREFIX + self._worker_id,
                        json.dumps({"ids": held[0], "count": held[1]}),
                        ex=int(OFFLINE_AFTER_SECONDS),
                    )
                    await pipe.execute()
            except Exception as exc:
                logger.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(INTERVAL_SECONDS)


async def known_workers(redis: Redis) -> list[dict[str, object]]:
    """Every worker seen in the last hour, with `online` false past 30 s of silence; the
    ones silent for longer than an hour are dropped from the hash."""
    now = time.time()
    workers, gone = [], []
    for worker_id, raw in (await redis.hgetall(WORKERS)).items():
        info = json.loads(raw)
        info.pop("tasks", None)  # for the reaper; the API shows the count
        silent = now - float(info["last_seen"])
        if silent > FORGET_AFTER_SECONDS:
            gone.append(worker_id)
            continue
        info["online"] = silent <= OFFLINE_AFTER_SECONDS
        with_uptime(info, now)
        info["last_seen"] = datetime.fromtimestamp(float(info["last_seen"]), UTC).isoformat()
        workers.append(info)
    if gone:
        await redis.hdel(WORKERS, *gone)
    return sorted(workers, key=lambda w: str(w["id"]))


def with_uptime(info: dict[str, object], now: float) -> None:
    """Seconds since the worker started: up to now while it is online, else up to the last
    heartbeat (a worker that went silent stopped counting then)."""
    until = now if info["online"] else float(str(info["last_seen"]))
    started = datetime.fromisoformat(str(info["started_at"])).timestamp()
    info["uptime_seconds"] = round(max(0.0, until - started), 3)


async def held_task_ids(redis: Redis) -> set[str] | None:
    """Ids of the messages live workers hold (delivered, not acknowledged); None when one
    holds more than its heartbeat lists, so that nobody can tell which."""
    now = time.time()
    live = []
    for worker_id, raw in (await redis.hgetall(WORKERS)).items():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if now - float(json.loads(raw)["last_seen"]) <= OFFLINE_AFTER_SECONDS:
                live.append(worker_id.decode() if isinstance(worker_id, bytes) else worker_id)
    held: set[str] = set()
    lists: list[Any] = await redis.mget([WORKER_HELD_PREFIX + w for w in live]) if live else []
    for listing in lists:
        if listing is None:
            continue  # a worker without the list (an older version) holds nothing we know of
        with contextlib.suppress(ValueError, KeyError, TypeError):
            info = json.loads(listing)
            listed = [str(task_id) for task_id in info["ids"]]
            if int(info["count"]) > len(listed):
                return None
            held.update(listed)
    return held
