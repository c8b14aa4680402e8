"""The guard's errors: approvals and policies (see :mod:`errand.kit.errors` for kinds and statuses)."""

from errand.kit.errors import NotFound


class ApprovalNotFound(NotFound):
    """No approval of that id in the caller's organization, mode and scenarios (404)."""

    code = "approval_not_found"
