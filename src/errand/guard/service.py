"""The guard's public face: idempotency, policies, rate limits and approvals.

Other domain modules use the guard only through this module.
"""

from errand.guard import approvals, policies
from errand.guard.idempotency import (
    REPLAY_CACHE_SECONDS, Claim, IdempotentResult, Replayed, noting_replays, run_idempotent, still_completed,
)
from errand.guard.rate_limits import RateLimits

__all__ = ["REPLAY_CACHE_SECONDS", "Claim", "IdempotentResult", "RateLimits", "Replayed", "approvals", "noting_replays",
           "policies", "run_idempotent", "still_completed"]
