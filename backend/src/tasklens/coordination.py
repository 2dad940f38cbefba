"""Atomic claims shared by every process: who runs an analysis, and until when.

Deduplication of identical requests and per-subject slots both reduce to "take this key
unless someone holds it; tell me who does". Redis does it with one `SET key owner NX EX ttl
GET` (Redis ≥ 7), released by a compare-and-delete script so a late release can never free
someone else's claim; the embedded mode does the same in memory. Every claim has a TTL: a
worker that dies never leaves a key held forever.

A request decides to claim from what it read before (the cached result), so a run that
finished in between must not be started again: `finish` frees the key and remembers who
finished it, in one step, and `claim_unless_finished` refuses, in one step, when someone
other than the finisher the caller had seen has finished since.

A run that ends without a result (failed for good, cancelled) is remembered too, for a
while (`fail`): reading the analysis then shows that failure instead of starting it again,
so a page left open on a failing analysis never starts run after run. The next `finish`
forgets it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from tasklens.tracking.redis_connection import connect
from tasklens.tracking.redis_keys import CLAIM_PREFIX

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: the claim, its last finisher. ARGV: owner, ttl, the finisher the caller had seen.
# Our own name back is a retried call whose first try took the key before the reply was
# lost (redis_connection.py): the claim is ours.
_CLAIM_UNLESS_FINISHED = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then return {'won', held} end
if held then return {'held', held} end
local finished = redis.call('GET', KEYS[2])
if finished and finished ~= ARGV[3] then return {'finished', finished} end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return {'won', ARGV[1]}
"""
# KEYS: the claim, its last finisher, its last failure. ARGV: owner, how long to remember it.
_FINISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[3])
return 1
"""
# KEYS: the claim, its last failure. ARGV: owner, how long to remember it. A claim someone
# else took meanwhile (ours had expired) is theirs: their run will say how it ended.
_FAIL = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
if held then redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
"""


@dataclass(frozen=True, slots=True)
class Claim:
    """What `claim_unless_finished` found: the key is ours, or `holder` holds it, or
    `finished_by` finished it since the caller looked."""

    holder: str | None = None
    finished_by: str | None = None

    @property
    def won(self) -> bool:
        return self.holder is None and self.finished_by is None


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

    async def claim_unless_finished(
        self, key: str, owner: str, ttl_seconds: int, seen: str | None
    ) -> Claim:
        """Take `key` for `owner`, unless it is held or an owner other than `seen` (the last
        finisher the caller knew of, if any) has `finish`ed it since."""
        ...

    async def finish(self, key: str, owner: str, remember_seconds: int) -> None:
        """Free `key` if `owner` holds it and remember `owner` as its last finisher (and
        forget its last failure)."""
        ...

    async def fail(self, key: str, owner: str, remember_seconds: int) -> None:
        """Free `key` if `owner` holds it and remember `owner` as its last failure, unless
        another owner holds it now."""
        ...

    async def last_failed(self, key: str) -> str | None:
        """The owner whose run of `key` last ended without a result, while remembered."""
        ...

    async def close(self) -> None: ...


class InProcessCoordinator:
    def __init__(self) -> None:
        self._held: dict[str, tuple[str, float]] = {}
        self._finished: dict[str, tuple[str, float]] = {}
        self._failed: dict[str, tuple[str, float]] = {}
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

    async def claim_unless_finished(
        self, key: str, owner: str, ttl_seconds: int, seen: str | None
    ) -> Claim:
        async with self._lock:
            now = time.monotonic()
            current = self._held.get(key)
            if current is not None and current[1] > now:
                return Claim() if current[0] == owner else Claim(holder=current[0])
            finished = self._finished.get(key)
            if finished is not None and finished[1] > now and finished[0] != seen:
                return Claim(finished_by=finished[0])
            self._held[key] = (owner, now + ttl_seconds)
            return Claim()

    async def finish(self, key: str, owner: str, remember_seconds: int) -> None:
        async with self._lock:
            current = self._held.get(key)
            if current is not None and current[0] == owner:
                del self._held[key]
            self._finished[key] = (owner, time.monotonic() + remember_seconds)
            self._failed.pop(key, None)

    async def fail(self, key: str, owner: str, remember_seconds: int) -> None:
        async with self._lock:
            current = self._held.get(key)
            if current is not None and current[1] > time.monotonic() and current[0] != owner:
                return
            self._held.pop(key, None)
            self._failed[key] = (owner, time.monotonic() + remember_seconds)

    async def last_failed(self, key: str) -> str | None:
        failed = self._failed.get(key)
        return failed[0] if failed is not None and failed[1] > time.monotonic() else None

    async def close(self) -> None:
        self._held.clear()
        self._finished.clear()
        self._failed.clear()


class RedisCoordinator:
    def __init__(self, redis_url: str, prefix: str = CLAIM_PREFIX) -> None:
        self._redis: Redis = connect(redis_url, decode_responses=True)
        self._prefix = prefix
        self._release = self._redis.register_script(_RELEASE)
        self._claim_unless_finished = self._redis.register_script(_CLAIM_UNLESS_FINISHED)
        self._finish = self._redis.register_script(_FINISH)
        self._fail = self._redis.register_script(_FAIL)

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

    async def claim_unless_finished(
        self, key: str, owner: str, ttl_seconds: int, seen: str | None
    ) -> Claim:
        outcome, who = await self._claim_unless_finished(
            keys=self._keys(key), args=[owner, ttl_seconds, seen or ""]
        )
        if outcome == "held":
            return Claim(holder=str(who))
        if outcome == "finished":
            return Claim(finished_by=str(who))
        return Claim()

    async def finish(self, key: str, owner: str, remember_seconds: int) -> None:
        keys = [*self._keys(key), self._failed_key(key)]
        await self._finish(keys=keys, args=[owner, remember_seconds])

    async def fail(self, key: str, owner: str, remember_seconds: int) -> None:
        keys = [self._prefix + key, self._failed_key(key)]
        await self._fail(keys=keys, args=[owner, remember_seconds])

    async def last_failed(self, key: str) -> str | None:
        failed = await self._redis.get(self._failed_key(key))
        return None if failed is None else str(failed)

    def _keys(self, key: str) -> list[str]:
        return [self._prefix + key, f"{self._prefix}finished:{key}"]

    def _failed_key(self, key: str) -> str:
        return f"{self._prefix}failed:{key}"

    async def close(self) -> None:
        await self._redis.aclose()
