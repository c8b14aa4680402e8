"""The guard's errors: approvals and policies (see :mod:`errand.kit.errors` for kinds and statuses).
A reused idempotency key is :class:`errand.kit.errors.IdempotencyConflict` (the sandbox's providers
answer it too); a policy's own rate limit and the daily key limit are the generic
:class:`errand.kit.errors.RateLimited` (``rate_limited``)."""

from errand.kit.errors import Forbidden, NotFound


class ApprovalNotFound(NotFound):
    """No approval of that id in the caller's organization, mode and scenarios (404)."""

    code = "approval_not_found"


class PolicyNotFound(NotFound):
    """No policy of that id in the caller's organization (404; NOT_FOUND in the reservations dialect)."""

    code = "policy_not_found"


class PolicyViolation(Forbidden):
    """A policy denied the action (403); ``details`` names the policy."""

    code = "policy_violation"


