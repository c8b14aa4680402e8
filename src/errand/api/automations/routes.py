from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from errand.api import openapi as doc
from errand.api.automations import bodies
from errand.api.automations.auth import Caller
from errand.api.common import JSONBody, core_of
from errand.approvals import service as approvals_service
from errand.guard.schemas import ApprovalView
from errand.kit import clock

router = APIRouter()


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approved", "denied"]
    note: str | None = Field(default=None, max_length=2000)


def approval_body(a: ApprovalView) -> dict[str, Any]:
    """The contract's approval record, naming its subject under ``<subject_type>_id``: an
    automation's gate (``execution_id``, with the ``agent_id`` and ``step_id`` its action names and
    the rendered ``message``), a booking (``transaction_id``) or a job (``job_id``), with the exact
    action and amount to approve."""
    body: dict[str, Any] = {
        "id": a.id,
        "execution_id": None,
        "agent_id": None,
        "step_id": None,
        "transaction_id": None,
        "job_id": None,
        "policy_id": a.policy_id,
        "message": a.message,
        "status": a.status,
        "amount_usd": a.amount_usd,
        "action": a.action,
        "action_digest": a.action_digest,
        "expires_at": clock.iso(a.expires_at),
        "created_at": clock.iso(a.created_at),
        "decided_by": a.decided_by,
        "decided_at": clock.iso(a.decided_at),
        "note": a.note,
    }
    body[f"{a.subject_type}_id"] = a.subject_id
    if a.subject_type == "execution":
        body["agent_id"], body["step_id"] = a.action.get("agent_id"), a.action.get("step_id")
    return body


@router.get("/approvals", summary="List approvals", **doc.describe(bodies.ApprovalList))
async def list_approvals(
    request: Request, caller: Caller,
    status: Literal["pending", "approved", "denied", "expired", "void"] | None = Query(default=None),
) -> JSONBody:
    """Approval gates of your organization, newest first; ``?status=pending`` for the open ones."""
    approvals = await approvals_service.list_approvals(core_of(request), caller, status)
    return JSONBody({"approvals": [approval_body(a) for a in approvals]})


@router.post("/approvals/{approval_id}/decision", summary="Approve or deny",
             **doc.describe(bodies.DecidedApproval, 403, 404, 409))
async def decide(approval_id: str, body: DecisionIn, request: Request, caller: Caller) -> JSONBody:
    """Approve or deny. Approving executes exactly the action shown (capacity re-checked);
    an expired or already decided approval is 409 invalid_state."""
    approval, subject_status = await approvals_service.decide_approval(core_of(request), caller, approval_id,
                                                                      body.decision, body.note)
    result = approval_body(approval)
    if subject_status is not None:
        result[f"{approval.subject_type}_status"] = subject_status
    return JSONBody(result)
