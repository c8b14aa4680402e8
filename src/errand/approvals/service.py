"""Approvals as people see them: one list and one decision, whatever waits behind them.

The guard owns approval records; what a decision does belongs to the module whose action
waits (a booking transaction, an execution job). This module checks who may decide and
routes the decision; it holds no rule of its own beyond that.

An admin key sees and decides only the approvals of its own organization, its own mode
(test or live) and its own scenarios. Listing expires the caller's own due approvals, never
another organization's: everyone else's are expired by the periodic task.
"""

from typing import Literal

from errand.bookings import service as bookings_service
from errand.guard import service as guard_service
from errand.guard.schemas import ApprovalView
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.jobs import approvals as job_approvals
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import Conflict, Forbidden, InvalidRequest


async def expire_due_approvals(core: Core, principal: Principal | None = None) -> int:
    """Expire pending approvals past their deadline, each by the module its action belongs to.

    Without ``principal`` (the periodic task): every organization's. With one: only that key's
    organization and mode, so a request never changes another tenant's records."""
    scope = {} if principal is None else {"organization_id": principal.organization_id, "env": principal.env}
    async with core.db.unit_of_work(read_only=True) as session:
        due = await guard_service.approvals.due_for_expiry(session, clock.now(), **scope)
    for approval in due:
        if approval.subject_type == "job":
            await job_approvals.expire(core, approval)
        else:
            await bookings_service.expire_approval(core, approval)
    return len(due)


async def list_approvals(core: Core, principal: Principal, status: str | None) -> list[ApprovalView]:
    identity_service.require_admin(principal, "Deciding approvals")
    if status is not None and status not in guard_service.approvals.STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(guard_service.approvals.STATUSES)}.")
    await expire_due_approvals(core, principal)
    async with core.db.unit_of_work(read_only=True) as session:
        rows = await guard_service.approvals.list_for(session, principal, status)
        return [guard_service.approvals.view(a) for a in rows]


async def decide_approval(core: Core, principal: Principal, approval_id: str,
                          decision: Literal["approved", "denied"], note: str | None) -> tuple[ApprovalView, str | None]:
    """Approve or deny; returns the approval and the new status of what it gated."""
    identity_service.require_admin(principal, "Deciding approvals")
    async with core.db.unit_of_work(read_only=True) as session:
        approval = await guard_service.approvals.get_for(session, principal, approval_id)
    if approval.subject_type != "job":
        approval_view, txn = await bookings_service.decide_approval(core, principal, approval_id, decision, note)
        return approval_view, txn.status if txn else None
    if approval.status != "pending":
        raise Conflict("invalid_state", f"Approval {approval.id} is already {approval.status}.")
    if approval.expires_at <= clock.now():
        await job_approvals.expire(core, approval)
        raise Conflict("invalid_state", f"Approval {approval.id} expired at {clock.iso(approval.expires_at)}.")
    status = await job_approvals.decide(core, approval_id, principal.organization_id, decision, principal.actor, note)
    async with core.db.unit_of_work(read_only=True) as session:
        approval = await guard_service.approvals.get(session, principal.organization_id, approval_id)
    return guard_service.approvals.view(approval), status
