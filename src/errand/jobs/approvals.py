"""Human decisions on jobs that wait in ``awaiting_approval``.

Approving puts the job back to ``pending`` with the approved offer and enqueues its run
(``errand.run_job``, sent once the decision commits), and the runner then books exactly that
offer; denying or letting the approval expire ends the job as ``error`` with the reason (an
expiry is recorded as ``expired``, never as a denial).

This module is the ``job`` approval subject (:class:`errand.approvals.subjects.SubjectHandler`).
"""

from typing import Literal

from sqlalchemy import select, update

from errand.guard import service as guard_service
from errand.identity.schemas import Principal
from errand.jobs import journal, publishing
from errand.jobs.schemas import RUN_JOB
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import Conflict, InvalidState
from errand.kit.tasks import enqueue
from errand.models import Approval, Job

subject_type = "job"


async def decide(core: Core, principal: Principal, approval: Approval, decision: Literal["approved", "denied"],
                 note: str | None) -> str:
    """Record the decision on ``approval`` (as loaded for ``principal``) and apply it to the job;
    returns the job's new status. InvalidState when it is not pending, has expired (it is expired
    here) or no longer matches its job (it is voided)."""
    if approval.status != "pending":
        raise InvalidState(f"Approval {approval.id} is already {approval.status}.")
    if approval.expires_at <= clock.now():
        await expire(core, approval)
        raise InvalidState(f"Approval {approval.id} expired at {clock.iso(approval.expires_at)}.")
    organization_id, actor = principal.organization_id, principal.actor
    now = clock.now()
    async with core.db.unit_of_work() as session:
        approval = await guard_service.approvals.get(session, organization_id, approval.id)
        job = (await session.execute(select(Job).where(Job.id == approval.subject_id,
                                                       Job.organization_id == organization_id))).scalar_one()
        pending = dict(job.pending_action or {})
        if job.status != "awaiting_approval" or pending.get("approval_id") != approval.id:
            await guard_service.approvals.transition(session, approval, "void")
            raise InvalidState(f"Approval {approval.id} no longer matches its job and was voided.")
        await guard_service.approvals.transition(session, approval, decision, decided_by=actor, note=note)
        if decision == "approved":
            values = dict(status="pending", pending_action={**pending, "approved": True}, updated_at=now)
            message, type_ = f"Approved by {actor}", "action_allowed"
        else:
            values = dict(status="error", error=f"Approval {approval.id} was denied by {actor}"
                          + (f": {note}" if note else ""), summary="Denied by a human approver",
                          pending_action=None, completed_at=now, updated_at=now)
            message, type_ = f"Denied by {actor}", "action_denied"
        changed = await session.execute(update(Job).where(Job.id == job.id, Job.status == "awaiting_approval")
                                        .values(**values))
        if decision == "denied" and changed.rowcount == 1:
            await publishing.publish_for(session, job, "job.failed", "error", detail="approval_denied",
                                     approval_id=approval.id)
        await journal.record(session, organization_id=organization_id, job_id=job.id, type=type_, message=message,
                            actor=actor, approvalId=approval.id, decision=decision)
        if decision == "denied":
            await journal.record(session, organization_id=organization_id, job_id=job.id, type="job_failed",
                                message="error: approval denied", actor=actor, status="error")
        else:
            enqueue(session, RUN_JOB, job_id=job.id)
    return str(values["status"])


async def expire(core: Core, approval: Approval) -> None:
    """Expire a pending approval past its deadline and end its job as ``error``; nothing if it
    was decided meanwhile."""
    now = clock.now()
    async with core.db.unit_of_work() as session:
        approval = await guard_service.approvals.get(session, approval.organization_id, approval.id)
        try:
            await guard_service.approvals.transition(session, approval, "expired")
        except Conflict:
            return
        changed = await session.execute(
            update(Job).where(Job.id == approval.subject_id, Job.status == "awaiting_approval").values(
                status="error", error=f"Approval {approval.id} expired at {clock.iso(approval.expires_at)} "
                                      "without a decision.",
                summary="The approval expired", pending_action=None, completed_at=now, updated_at=now))
        if changed.rowcount == 1:
            await journal.record(session, organization_id=approval.organization_id, job_id=approval.subject_id,
                                type="job_failed", message="error: approval expired", actor="system",
                                status="error", approvalId=approval.id, decision="expired")
            await publishing.publish(session, organization_id=approval.organization_id, env=approval.env,
                                 job_id=approval.subject_id, scenario=approval.scenario, event_type="job.failed",
                                 status="error", detail="approval_expired", approval_id=approval.id)


async def finish_decided(core: Core) -> int:
    """Nothing to finish: a job's decision is applied in the unit of work that records it. A run
    lost after that commit leaves the job ``pending``, which :func:`errand.jobs.tasks.recover_jobs`
    runs again."""
    return 0
