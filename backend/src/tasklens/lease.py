"""One process per fleet does a fleet-wide job: evaluating the alerts (alerts/engine.py),
reaping (reaper.py), looking for lost messages (lost_messages.py).

Distributed: a Redis key taken when free and renewed by its holder each round (a
compare-and-renew script), so the same process keeps it while it lives (its in-memory state,
such as measures.HeldFor or the reaper's suspects, stays meaningful) and another takes over
within a TTL of its death. Embedded: the one process always holds it.
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

# KEYS: the lease. ARGV: owner, ttl ms. Ours: renewed; free: taken; else someone else's.
_TAKE_OR_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if held then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease(Protocol):
    async def hold(self, ttl_seconds: float) -> bool:
        """True while this process holds the lease (taken or renewed for `ttl_seconds`)."""
        ...

    async def release(self) -> None: ...


class SoleLease:
    """The embedded mode: one process, always the holder."""

    async def hold(self, ttl_seconds: float) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLease:
    def __init__(self, redis: Redis, owner: str, key: str) -> None:
        self._redis = redis
        self._owner = owner
        self._key = key
        self._take_or_renew = redis.register_script(_TAKE_OR_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def hold(self, ttl_seconds: float) -> bool:
        ttl_ms = max(1000, int(ttl_seconds * 1000))
        return bool(await self._take_or_renew(keys=[self._key], args=[self._owner, ttl_ms]))

    async def release(self) -> None:
        await self._release(keys=[self._key], args=[self._owner])
