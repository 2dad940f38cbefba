"""Atomic claims shared by every process: who runs an analysis, and until when.

Deduplication of identical requests and per-subject slots both reduce to "take this key
unless someone holds it; tell me who does". Redis does it with one `SET key owner NX EX ttl
GET` (Redis ≥ 7), released by a compare-and-delete script so a late release can never free
someone else's claim; the embedded mode does the same in memory. Every claim has a TTL: a
worker that dies never leaves a key held forever.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from redis.asyncio import Redis

from tasklens.redis_connection import connect

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Coordinator(Protocol):
    async def claim(self, key: str, owner: str, ttl_seconds: int) -> str | None:
        """Take `key` for `owner`: None when taken, else the owner who holds it."""
        ...

    async def release(self, key: str, owner: str) -> bool:
        """Free `key` if `owner` still holds it."""
        ...

    async def holder(self, key: str) -> str | None:
        """Who holds `key` now, if anyone."""
        ...

    async def close(self) -> None: ...


class InProcessCoordinator:
    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._lock = asyncio.Lock()

    async def claim(self, key: str, owner: str, ttl_seconds: int) -> str | None:
        async with self._lock:
            now = time.monotonic()
            current = self._held.get(key)
            if current is not None and current[1] > now:
                return current[0]
            self._held[key] = (owner, now + ttl_seconds)
            return None

    async def release(self, key: str, owner: str) -> bool:
        async with self._lock:
            current = self._held.get(key)
            if current is None or current[0] != owner:
                return False
            del self._held[key]
            return True

    async def holder(self, key: str) -> str | None:
        current = self._held.get(key)
        return current[0] if current is not None and current[1] > time.monotonic() else None

    async def close(self) -> None:
        self._held.clear()


class RedisCoordinator:
    def __init__(self, redis_url: str, prefix: str = "tasklens:claim:") -> None:
        self._redis: Redis = connect(redis_url, decode_responses=True)
        self._prefix = prefix
        self._release = self._redis.register_script(_RELEASE)

    async def claim(self, key: str, owner: str, ttl_seconds: int) -> str | None:
        held = await self._redis.set(self._prefix + key, owner, nx=True, ex=ttl_seconds, get=True)
        # Our own name back: a retried SET whose first try took the key before the reply was
        # lost (redis_connection.py) — the claim is ours.
        return None if held is None or held == owner else str(held)

    async def release(self, key: str, owner: str) -> bool:
        return bool(await self._release(keys=[self._prefix + key], args=[owner]))

    async def holder(self, key: str) -> str | None:
        held = await self._redis.get(self._prefix + key)
        return None if held is None else str(held)

    async def close(self) -> None:
        await self._redis.aclose()
