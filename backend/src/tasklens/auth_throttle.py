"""Failed token attempts, counted per client address across HTTP and the WebSocket.

Past TASKLENS_AUTH_FAILURE_LIMIT (10 a minute) every request from that address that needs a
token is refused (429, Retry-After) until the window has room again, a valid token included:
otherwise the answer to one more guess would still tell a right token from a wrong one.

A token that is neither configured nor cached counts as a failure before the table is asked,
so a burst of concurrent guesses cannot all be checked before the first ones are counted; the
count is taken back when the table has it. A missing token is no guess and is not counted.

The count is shared by every API process through Redis (rate_limit.py); while Redis is
unreachable each process counts in memory, so authentication never depends on Redis.
The address is the peer's, or X-Forwarded-For's only from TASKLENS_TRUSTED_PROXIES (cli.py).
"""

from __future__ import annotations

import logging
import math
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


class AuthThrottle:
    def __init__(self, registry: TokenRegistry, limiter: RateLimiter, limit: Limit) -> None:
        self._registry = registry
        self._limiter = limiter
        self._fallback = InProcessRateLimiter(limit)
        self._shared = not isinstance(limiter, InProcessRateLimiter)

    async def authenticate(self, address: str, token: str | None) -> Principal | None:
        """The token's principal, None for a missing or wrong one; Throttled past the limit."""
        if not token:
            return None
        principal = self._registry.known(token)
        if principal is not None:
            await self._refuse_if_limited(await self._ask(lambda lim: lim.wait(address)))
            return principal
        await self._refuse_if_limited(await self._ask(lambda lim: lim.hit(address)))
        principal = await self._registry.lookup(token)
        if principal is not None:
            await self._ask(lambda lim: lim.forget(address))
        return principal

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
