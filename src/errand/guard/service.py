"""The guard's public face: idempotency, policies, rate limits, approvals and their errors.

Other domain modules and the dialects use the guard only through this module (and its schemas).
"""

from errand.guard import approvals, policies
from errand.guard.errors import ApprovalNotFound, PolicyNotFound, PolicyViolation
from errand.kit.errors import IdempotencyConflict
from errand.guard.idempotency import Claim, IdempotentResult, run_idempotent
from errand.guard.rate_limits import RateLimits

__all__ = [
    "ApprovalNotFound", "Claim", "IdempotencyConflict", "IdempotentResult", "PolicyNotFound", "PolicyViolation",
    "RateLimits", "approvals", "policies", "run_idempotent",
]
