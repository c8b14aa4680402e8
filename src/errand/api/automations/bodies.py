"""The automations dialect's response bodies as documented models (OpenAPI only).

The routes build their answers with ``approval_body``; these models describe the same bytes for the
OpenAPI document, and the schemathesis conformance test holds the two together.
"""

from typing import Any, Literal

from pydantic import BaseModel, Field


class Approval(BaseModel):
    """An approval gate. A booking or job approval has no execution, agent or step; it names its
    transaction or job and shows the exact action and amount to approve."""

    id: str
    execution_id: str | None
    agent_id: str | None
    step_id: str | None
    transaction_id: str | None
    job_id: str | None
    policy_id: str | None
    message: str | None
    status: Literal["pending", "approved", "denied", "expired", "void"]
    amount_usd: float | None
    action: dict[str, Any] | None
    action_digest: str | None
    expires_at: str | None
    created_at: str
    decided_by: str | None
    decided_at: str | None
    note: str | None


class ApprovalList(BaseModel):
    approvals: list[Approval]


class DecidedApproval(Approval):
    job_status: str | None = Field(default=None, description="The job's status after the decision.")
    transaction_status: str | None = Field(default=None, description="The transaction's status after the decision.")
