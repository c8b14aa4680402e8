"""Rate limits, in memory for one process or in Redis when shared.

Two limits exist: each API key's ``rate_limit_per_day``, and RATE_LIMIT policies
(``maxRequestsPerHour`` per organization). A breach carries ``retry_after`` seconds: how long
until a request would be accepted if none were made meanwhile.

The daily key limit is checked on every authenticated request, so it uses ``limits``'
sliding-window counter: per key, this day-window's count plus the last one's weighted by how
much of it still falls within the last 24 h; constant memory and work per hit. The moving
window it replaced keeps one timestamp per request (up to the limit, 10 000 by default, per
key) and in memory storage expires them after every hit through a thread and a copy of the
list, which cost an auth-only GET ~0.3 ms of CPU. A policy's hourly limit is small and must
be exact (2 an hour means the third is refused): it stays a moving window.
"""

import math
import time

from limits import RateLimitItemPerDay, RateLimitItemPerHour
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string


def sliding_retry_after(limit: int, window: float, previous: int, left: float, current: int) -> float:
    """Seconds until a sliding-window counter at ``limit`` per ``window`` seconds accepts one more
    hit, if none is made meanwhile.

    ``previous`` and ``current`` are the two windows' counts; ``left`` the seconds left in the
    current window, which is also the previous count's weight × ``window`` (``limits``' own
    admission rule: accepted while ``floor(previous × left / window + current) < limit``).
    ``limits``' ``get_window_stats`` answers when the next count falls by one instead, which is
    earlier than a retry would succeed."""
    if current < limit:
        return max(0.0, left - (limit - current) * window / previous) if previous else 0.0
    # Only once this window has become the previous one, and enough of it has slid out.
    return left + window * (1 - limit / current)


class RateLimits:
    def __init__(self, redis_url: str | None = None) -> None:
        if redis_url:
            uri = redis_url.replace("redis://", "async+redis://", 1)
            storage = storage_from_string(uri)  # coredis, which limits[async-redis] installs
        else:
            storage = storage_from_string("async+memory://")
        self._daily = SlidingWindowCounterRateLimiter(storage)  # type: ignore[arg-type]
        self._hourly = MovingWindowRateLimiter(storage)  # type: ignore[arg-type]

    async def hit_key_daily(self, api_key_id: str, per_day: int) -> int | None:
        """Count one request of the key; None when within ``per_day``, else the seconds to wait (≥ 1)."""
        item = RateLimitItemPerDay(per_day)
        if await self._daily.hit(item, "key", api_key_id):
            return None
        window = item.get_expiry()
        previous, previous_left, current, current_left = await self._daily.storage.get_sliding_window(
            item.key_for("key", api_key_id), window)
        # The current count lives two windows; with no previous count, ``limits`` reports its weight as 0.
        left = previous_left if previous else max(0.0, current_left - window)
        return max(1, math.ceil(sliding_retry_after(per_day, window, previous, left, current)))

    async def hit_policy_hourly(self, policy_id: str, per_hour: int) -> int | None:
        """Count one action under the policy; None when within ``per_hour``, else the seconds to wait (≥ 1)."""
        item = RateLimitItemPerHour(per_hour)
        if await self._hourly.hit(item, "policy", policy_id):
            return None
        reset_at, _remaining = await self._hourly.get_window_stats(item, "policy", policy_id)
        return max(1, math.ceil(reset_at - time.time()))
