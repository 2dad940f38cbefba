"""Sliding-window rate limits, shared by every API process (Redis) or in-process.

A limit is N events per W seconds per key. `hit()` either records an event and returns None,
or records nothing and returns how many seconds until the oldest event in the window leaves
it (the Retry-After a client should wait). `wait()` answers the same without recording, and
`forget()` takes back the newest event (one recorded before it was known not to count).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from tasklens.tracking.redis_connection import connect
from tasklens.tracking.redis_keys import RATE_LIMIT_PREFIX

# KEYS[1] = the window's sorted set; ARGV = now (ms), window (ms), limit, and the member to
# add when there is room (none: only ask). Returns the ms until there is room, or -1.
_SLIDING_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + ARGV[2] - ARGV[1]
end
if ARGV[4] then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return -1
"""


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """`5/300` → 5 per 300 seconds."""
        count, _, seconds = text.partition("/")
        if not (count.isdigit() and seconds.isdigit()) or int(count) < 1 or int(seconds) < 1:
            raise ValueError("must look like 5/300 (5 per 300 seconds)")
        return cls(int(count), int(seconds))

    @classmethod
    def parse_setting(cls, value: object) -> object:
        """A setting's text parsed once, when the settings are read."""
        return cls.parse(value) if isinstance(value, str) else value

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}"


class RateLimiter(Protocol):
    async def hit(self, key: str) -> float | None: ...
    async def wait(self, key: str) -> float | None: ...
    async def remaining(self, key: str) -> int:
        """Hits `key` has left in the window now (none recorded)."""
        ...

    async def forget(self, key: str) -> None: ...
    async def close(self) -> None: ...


class InProcessRateLimiter:
    SWEEP_AT_KEYS = 10_000  # past this many keys, the ones with nothing in their window go

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._events: dict[str, deque[float]] = {}
        self._lock = asyncio.Lock()

    def _window(self, key: str, now: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.limit.seconds:
            events.popleft()
        return events

    async def hit(self, key: str) -> float | None:
        async with self._lock:
            now = time.monotonic()
            if len(self._events) >= self.SWEEP_AT_KEYS:
                self._sweep(now)
            events = self._window(key, now)
            if len(events) >= self.limit.count:
                return events[0] + self.limit.seconds - now
            events.append(now)
            return None

    async def wait(self, key: str) -> float | None:
        async with self._lock:
            now = time.monotonic()
            events = self._events.get(key)
            if events is None:
                return None
            events = self._window(key, now)
            return events[0] + self.limit.seconds - now if len(events) >= self.limit.count else None

    async def remaining(self, key: str) -> int:
        async with self._lock:
            if key not in self._events:
                return self.limit.count
            return max(0, self.limit.count - len(self._window(key, time.monotonic())))

    async def forget(self, key: str) -> None:
        async with self._lock:
            events = self._events.get(key)
            if events:
                events.pop()

    def _sweep(self, now: float) -> None:
        for key in list(self._events):
            if not self._window(key, now):
                del self._events[key]

    async def close(self) -> None:
        self._events.clear()


class RedisRateLimiter:
    def __init__(self, redis_url: str, limit: Limit, prefix: str = RATE_LIMIT_PREFIX) -> None:
        self.limit = limit
        self._redis: Redis = connect(redis_url)
        self._script = self._redis.register_script(_SLIDING_WINDOW)
        self._prefix = prefix

    async def hit(self, key: str) -> float | None:
        return await self._seconds_to_wait(key, uuid.uuid4().hex)

    async def wait(self, key: str) -> float | None:
        return await self._seconds_to_wait(key)

    async def _seconds_to_wait(self, key: str, *member: str) -> float | None:
        """None when there is room (and `member`, if given, is counted in the window)."""
        now_ms = int(time.time() * 1000)
        window = [now_ms, self.limit.seconds * 1000, self.limit.count]
        wait_ms = int(await self._script(keys=[self._prefix + key], args=[*window, *member]))
        return None if wait_ms < 0 else max(wait_ms / 1000, 0.001)

    async def remaining(self, key: str) -> int:
        now_ms = int(time.time() * 1000)
        since = f"({now_ms - self.limit.seconds * 1000}"  # the script's window: (now - w, now]
        used = int(await self._redis.zcount(self._prefix + key, since, "+inf"))
        return max(0, self.limit.count - used)

    async def forget(self, key: str) -> None:
        await self._redis.zpopmax(self._prefix + key)

    async def close(self) -> None:
        await self._redis.aclose()


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
