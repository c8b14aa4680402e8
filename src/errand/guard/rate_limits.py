"""Moving-window rate limits, in memory for one process or in Redis when shared.

Two limits exist: each API key's ``rate_limit_per_day``, and RATE_LIMIT policies
(``maxRequestsPerHour`` per organization). A breach carries ``retry_after`` seconds.
"""

import math
import time

from limits import RateLimitItemPerDay, RateLimitItemPerHour
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


class RateLimits:
    def __init__(self, redis_url: str | None = None) -> None:
        if redis_url:
            uri = redis_url.replace("redis://", "async+redis://", 1)
            storage = storage_from_string(uri, implementation="redispy")
        else:
            storage = storage_from_string("async+memory://")
        self._limiter = MovingWindowRateLimiter(storage)

    async def _hit(self, item: object, *identifiers: str) -> int | None:
        """None when within the limit, else seconds until a request would be allowed."""
        if await self._limiter.hit(item, *identifiers):  # type: ignore[arg-type]
            return None
        reset_at, _remaining = await self._limiter.get_window_stats(item, *identifiers)  # type: ignore[arg-type]
        return max(1, math.ceil(reset_at - time.time()))

    async def hit_key_daily(self, api_key_id: str, per_day: int) -> int | None:
        return await self._hit(RateLimitItemPerDay(per_day), "key", api_key_id)

    async def hit_policy_hourly(self, policy_id: str, per_hour: int) -> int | None:
        return await self._hit(RateLimitItemPerHour(per_hour), "policy", policy_id)
