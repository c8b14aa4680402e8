"""The guard's public face: idempotency, policies, rate limits and approvals.

Other domain modules use the guard only through this module.
"""

from errand.guard import approvals, policies
from errand.guard.idempotency import Claim, IdempotentResult, run_idempotent
from errand.guard.rate_limits import RateLimits

__all__ = ["Claim", "IdempotentResult", "RateLimits", "approvals", "policies", "run_idempotent"]
