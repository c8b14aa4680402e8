"""The guard's public face: idempotency, policies, rate limits, approvals and their errors.

Other domain modules and the dialects use the guard only through this module (and its schemas).
"""

from errand.guard import approvals, policies
from errand.guard.cel import RuleError, check as check_rule, evaluate_with
from errand.guard.errors import ApprovalNotFound, PolicyNotFound, PolicyViolation
from errand.guard.idempotency import (
    REPLAY_CACHE_SECONDS, Claim, IdempotentResult, Replayed, noting_replays, run_idempotent, still_completed,
)
from errand.guard.rate_limits import RateLimits
from errand.kit.errors import IdempotencyConflict

__all__ = [
    "REPLAY_CACHE_SECONDS", "ApprovalNotFound", "Claim", "IdempotencyConflict", "IdempotentResult", "PolicyNotFound",
    "PolicyViolation", "RateLimits", "Replayed", "RuleError", "approvals", "check_rule", "evaluate_with", "noting_replays",
    "policies", "run_idempotent", "still_completed",
]
