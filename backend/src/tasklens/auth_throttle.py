"""Failed token attempts, counted per client address across HTTP and the WebSocket.

Past TASKLENS_AUTH_FAILURE_LIMIT (10 a minute) every request from that address that needs a
token is refused (429, Retry-After) until the window has room again, a valid token included:
otherwise the answer to one more guess would still tell a right token from a wrong one.

A token that is neither configured nor cached counts as a failure before the table is asked,
so a burst of concurrent guesses cannot all be checked before the first ones are counted; the
count is taken back when the table has it. A missing token is no guess and is not counted.

The count is shared by every API process through Redis (rate_limit.py); while Redis is
unreachable each process counts in memory, so authentication never depends on Redis.
A valid token's request asks Redis whether its address is throttled at most once every
CLEAR_SECONDS per address and process (a round trip per request was a tenth of an enqueue's
CPU); a failure counted by this process asks again at once. So this process refuses a valid
token from an address at once when it counted that address's failures itself, and at most
CLEAR_SECONDS late when other processes counted them.
The address is the peer's, or X-Forwarded-For's only from TASKLENS_TRUSTED_PROXIES (cli.py).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from tasklens.rate_limit import InProcessRateLimiter, Limit, RateLimiter
from tasklens.tokens import Principal, TokenRegistry

logger = logging.getLogger(__name__)


class Throttled(Exception):
    def __init__(self, retry_in: float) -> None:
        self.retry_in = retry_in
        super().__init__(
            "too many failed token attempts from this address: "
            f"retry in {max(1, math.ceil(retry_in))} s"
        )


# A question to the shared count in flight, and this process's failures when it was asked.
Asking = tuple["asyncio.Future[float | None]", int]


class AuthThrottle:
    CLEAR_SECONDS = 1.0
    SWEEP_AT_ADDRESSES = 10_000  # past this many remembered addresses, the expired ones go

    def __init__(self, registry: TokenRegistry, limiter: RateLimiter, limit: Limit) -> None:
        self._registry = registry
        self._limiter = limiter
        self._fallback = InProcessRateLimiter(limit)
        self._shared = not isinstance(limiter, InProcessRateLimiter)
        # Address → when Redis last said it was not throttled (monotonic seconds).
        self._clear: dict[str, float] = {}
        self._failures = 0  # counted by this process: an answer asked before one is not kept
        self._asking: dict[str, Asking] = {}  # address → its question to Redis in flight

    async def authenticate(self, address: str, token: str | None) -> Principal | None:
        """The token's principal, None for a missing or wrong one; Throttled past the limit."""
        if not token:
            return None
        principal = self._registry.known(token)
        if principal is not None:
            if not self._shared:
                await self._refuse_if_limited(await self._ask(lambda lim: lim.wait(address)))
            elif not self._recently_clear(address):
                await self._refuse_if_limited(await self._shared_wait(address))
            return principal
        self._failures += 1
        self._clear.pop(address, None)
        await self._refuse_if_limited(await self._ask(lambda lim: lim.hit(address)))
        principal = await self._registry.lookup(token)
        if principal is not None:
            await self._ask(lambda lim: lim.forget(address))
        return principal

    def _recently_clear(self, address: str) -> bool:
        checked = self._clear.get(address)
        return checked is not None and time.monotonic() - checked < self.CLEAR_SECONDS

    async def _shared_wait(self, address: str) -> float | None:
        """Whether `address` is throttled, asked of Redis once at a time per address: a burst
        of requests shares one answer, unless this process counted a failure since it was
        asked. A "no" is remembered for CLEAR_SECONDS."""
        asking = self._asking.get(address)
        if asking is None or asking[1] != self._failures:
            failures = self._failures
            question = asyncio.ensure_future(self._ask(lambda lim: lim.wait(address)))
            asking = (question, failures)
            self._asking[address] = asking

            def answered(done: asyncio.Future[float | None], mine: Asking = asking) -> None:
                if self._asking.get(address) is mine:
                    del self._asking[address]
                if done.cancelled() or done.exception() is not None:
                    return
                if done.result() is None and failures == self._failures:
                    self._remember_clear(address)

            question.add_done_callback(answered)
        return await asyncio.shield(asking[0])

    def _remember_clear(self, address: str) -> None:
        now = time.monotonic()
        if len(self._clear) >= self.SWEEP_AT_ADDRESSES:
            self._clear = {a: t for a, t in self._clear.items() if now - t < self.CLEAR_SECONDS}
        self._clear[address] = now

    @staticmethod
    async def _refuse_if_limited(retry_in: float | None) -> None:
        if retry_in is not None:
            raise Throttled(retry_in)

    async def _ask(self, op: Callable[[RateLimiter], Awaitable[float | None]]) -> float | None:
        try:
            return await op(self._limiter)
        except (RedisError, OSError) as exc:
            if not self._shared:
                raise
            logger.warning("auth throttle: Redis unreachable (%s); counting in this process", exc)
            return await op(self._fallback)

    async def close(self) -> None:
        await self._limiter.close()
        await self._fallback.close()
