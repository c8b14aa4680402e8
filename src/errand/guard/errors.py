"""The guard's errors: approvals, policies, idempotency and rate limits (see :mod:`errand.kit.errors`
for kinds and statuses). A policy's own rate limit and the daily key limit are the generic
:class:`errand.kit.errors.RateLimited` (``rate_limited``)."""

from errand.kit.errors import Conflict, Forbidden, NotFound


class ApprovalNotFound(NotFound):
    """No approval of that id in the caller's organization, mode and scenarios (404)."""

    code = "approval_not_found"


class PolicyNotFound(NotFound):
    """No policy of that id in the caller's organization (404; NOT_FOUND in the reservations dialect)."""

    code = "policy_not_found"


class PolicyViolation(Forbidden):
    """A policy denied the action (403); ``details`` names the policy."""

    code = "policy_violation"


class IdempotencyConflict(Conflict):
    """The Idempotency-Key was used with another request body, or its request is still being
    processed or was taken over by a retry (409)."""

    code = "idempotency_conflict"

