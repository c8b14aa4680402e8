"""Human decisions on automations' approval gates: the ``execution`` approval subject.

An ``approval_gate`` step (:mod:`errand.automations.runner`) leaves its execution in
``waiting_approval`` with a pending approval (subject ``execution``, scenario ``automation``) and
a receipt ``waiting_approval``. This module is what a decision does
(:class:`errand.approvals.subjects.SubjectHandler`), in the unit of work that records it:

- approved: the receipt is completed with ``{decision, note, decided_by}``, the execution is
  ``running`` again at the next step, and ``errand.automations.run_execution`` is enqueued;
- denied: the receipt is completed with ``decision: denied``, the remaining steps are skipped
  and the execution is ``cancelled`` with reason ``approval_denied``;
- expired (no decision before ``timeout_minutes``): the approval ``expired``, the receipt failed,
  the remaining steps skipped, the execution ``failed`` with reason ``approval_expired``
  (RESOLUTIONS.md "Automations dialect").

A decision on an approval that is no longer pending, has expired or no longer matches its
execution's waiting gate (the execution was cancelled meanwhile) is InvalidState; in the last
case the approval is voided. Nothing is left to finish after a crash: the decision and its
effect commit together, and an approved execution whose run was lost is found again by the
recovery sweep (:func:`errand.automations.tasks.recover`), so :func:`finish_decided` returns 0.
"""

from typing import Literal

from sqlalchemy import select, update

from errand.automations.runner import RUN_EXECUTION, end, receipt, skip
from errand.guard import service as guard_service
from errand.identity.schemas import Principal
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import Conflict, InvalidState
from errand.kit.tasks import enqueue
from errand.models import Approval, Execution, ExecutionStep
from errand.outbox import service as outbox_service

subject_type = "execution"


async def decide(core: Core, principal: Principal, approval: Approval, decision: Literal["approved", "denied"],
                 note: str | None) -> str:
    """Record ``decision`` on the gate's approval and apply it to its execution; returns the
    execution's new status (``running`` or ``cancelled``). InvalidState when the approval is not
    pending, has expired (it is expired here) or no longer matches its execution (it is voided)."""
    if approval.status != "pending":
        raise InvalidState(f"Approval {approval.id} is already {approval.status}.")
    if clock.as_utc(approval.expires_at) <= clock.now():
        await expire(core, approval)
        raise InvalidState(f"Approval {approval.id} expired at {clock.iso(approval.expires_at)}.")
    organization_id, actor = principal.organization_id, principal.actor
    voided = False
    status = "running" if decision == "approved" else "cancelled"
    async with core.db.unit_of_work() as session:
        approval = await guard_service.approvals.get(session, organization_id, approval.id)
        execution = (await session.execute(select(Execution).where(
            Execution.id == approval.subject_id, Execution.organization_id == organization_id)
            .with_for_update())).scalar_one_or_none()
        gate = None if execution is None else await _gate(session, execution.id, approval)
        if execution is None or gate is None or execution.status != "waiting_approval":
            await guard_service.approvals.transition(session, approval, "void")
            voided = True
        else:
            await guard_service.approvals.transition(session, approval, decision, decided_by=actor, note=note)
            output = {"decision": decision, "note": note, "decided_by": actor, "approval_id": approval.id}
            step = {"id": gate.step_id, "type": gate.step_type}
            await receipt(session, execution.id, step, gate.position, "completed", output=output)
            if decision == "approved":
                now = clock.now()
                changed = await session.execute(
                    update(Execution).where(Execution.id == execution.id, Execution.status == "waiting_approval",
                                            Execution.position == gate.position)
                    .values(status="running", position=gate.position + 1, lease_until=None, updated_at=now)
                    .execution_options(synchronize_session=False))
                if changed.rowcount == 1:
                    enqueue(session, RUN_EXECUTION, execution_id=execution.id)
            else:
                await skip(session, execution.id, (execution.definition or {}).get("steps") or [], gate.position + 1)
                await end(session, execution, "cancelled", reason="approval_denied",
                          error=f"Approval {approval.id} was denied by {actor}.", from_statuses=("waiting_approval",))
    if voided:
        raise InvalidState(f"Approval {approval.id} no longer matches its execution and was voided.")
    return status


async def _gate(session: object, execution_id: str, approval: Approval) -> ExecutionStep | None:
    """The execution's receipt waiting on ``approval`` (its step named in the approval's action)."""
    step_id = (approval.action or {}).get("step_id")
    return (await session.execute(select(ExecutionStep).where(  # type: ignore[attr-defined]
        ExecutionStep.execution_id == execution_id, ExecutionStep.step_id == step_id,
        ExecutionStep.status == "waiting_approval"))).scalar_one_or_none()


async def expire(core: Core, approval: Approval) -> None:
    """Expire a pending gate past its deadline and fail its execution (``approval_expired``);
    nothing if it was decided meanwhile."""
    async with core.db.unit_of_work() as session:
        approval = await guard_service.approvals.get(session, approval.organization_id, approval.id)
        try:
            await guard_service.approvals.transition(session, approval, "expired")
        except Conflict:
            return
        execution = (await session.execute(select(Execution).where(
            Execution.id == approval.subject_id, Execution.organization_id == approval.organization_id)
            .with_for_update())).scalar_one_or_none()
        if execution is None:
            return
        gate = await _gate(session, execution.id, approval)
        with outbox_service.acting_for(execution.id):
            ended = await end(session, execution, "failed", reason="approval_expired",
                              error=f"Approval {approval.id} expired at {clock.iso(approval.expires_at)} "
                                    "without a decision.", from_statuses=("waiting_approval",))
        if ended and gate is not None:
            await receipt(session, execution.id, {"id": gate.step_id, "type": gate.step_type}, gate.position,
                          "failed", output={"decision": "expired", "approval_id": approval.id},
                          error="The approval expired without a decision.")
            await skip(session, execution.id, (execution.definition or {}).get("steps") or [], gate.position + 1)


async def finish_decided(core: Core) -> int:
    """Nothing to finish (see the module docstring)."""
    return 0
