"""Approvals as people see them: one list and one decision, whatever waits behind them.

The guard owns approval records; what a decision does belongs to the module whose action
waits (a booking transaction, an execution job), registered as the approval's subject
(:mod:`errand.approvals.subjects`). This module checks who may decide and routes the decision
to the subject's handler; it holds no rule of its own beyond that.

An admin key sees and decides only the approvals of its own organization, its own mode
(test or live) and its own scenarios. Listing expires the caller's own due approvals, never
another organization's: everyone else's are expired by the periodic task.

Every function here may reach a provider through a subject's handler (a booking's hold is
released or confirmed), so each takes the core and opens its own short units of work.
"""

from errand.approvals import subjects
from errand.approvals.subjects import Decision
from errand.guard import service as guard_service
from errand.guard.schemas import ApprovalView
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import InvalidRequest


async def expire_due_approvals(core: Core, principal: Principal | None = None) -> int:
    """Expire pending approvals past their deadline, each by its subject's handler; returns how many.

    Without ``principal`` (the periodic task): every organization's. With one: only that key's
    organization and mode, so a request never changes another tenant's records."""
    scope = {} if principal is None else {"organization_id": principal.organization_id, "env": principal.env}
    async with core.db.unit_of_work(read_only=True) as session:
        due = await guard_service.approvals.due_for_expiry(session, clock.now(), **scope)
    for approval in due:
        await subjects.of(core)[approval.subject_type].expire(core, approval)
    return len(due)


async def finish_decided_approvals(core: Core) -> int:
    """Carry out decisions whose carrying-out was interrupted, for every registered subject;
    returns how many were finished (periodic, :mod:`errand.approvals.tasks`)."""
    return sum([await handler.finish_decided(core) for handler in subjects.of(core)])


async def list_approvals(core: Core, principal: Principal, status: str | None) -> list[ApprovalView]:
    """The caller's approvals, newest first (``status`` filters), after expiring its own due ones.

    Forbidden unless an admin key; InvalidRequest for an unknown ``status``."""
    identity_service.require_admin(principal, "Deciding approvals")
    if status is not None and status not in guard_service.approvals.STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(guard_service.approvals.STATUSES)}.")
    await expire_due_approvals(core, principal)
    async with core.db.unit_of_work(read_only=True) as session:
        rows = await guard_service.approvals.list_for(session, principal, status)
        return [guard_service.approvals.view(a) for a in rows]


async def decide_approval(core: Core, principal: Principal, approval_id: str, decision: Decision,
                          note: str | None) -> tuple[ApprovalView, str | None]:
    """Approve or deny; returns the approval and the new status of what it gated (None when
    nothing was left to carry out).

    Forbidden unless an admin key; ApprovalNotFound outside the caller's organization, mode or
    scenarios; InvalidState (409) from the subject's handler when the approval is decided,
    expired or voided."""
    identity_service.require_admin(principal, "Deciding approvals")
    async with core.db.unit_of_work(read_only=True) as session:
        approval = await guard_service.approvals.get_for(session, principal, approval_id)
    status = await subjects.of(core)[approval.subject_type].decide(core, principal, approval, decision, note)
    async with core.db.unit_of_work(read_only=True) as session:
        approval = await guard_service.approvals.get(session, principal.organization_id, approval_id)
        return guard_service.approvals.view(approval), status
