"""The automations dialect's response bodies as documented models (OpenAPI only).

The routes build their answers with ``approval_body`` and ``agent_body``; these models describe the same bytes for the
OpenAPI document, and the schemathesis conformance test holds the two together.
"""

from typing import Any, Literal

from pydantic import BaseModel, Field

from errand.api import openapi
from errand.automations.schemas import (
    AgentCreate, AgentUpdate, ClientScope, CloneRequest, ExecutionLimit, Filter, Step, Trigger,
)


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
    execution_status: str | None = Field(default=None, description="The execution's status after the decision.")
    job_status: str | None = Field(default=None, description="The job's status after the decision.")
    transaction_status: str | None = Field(default=None, description="The transaction's status after the decision.")


# --- agents, templates, the event catalog, credits -----------------------------------------


class AgentStats(BaseModel):
    """From the agent's executions and the credits ledger; rates and durations are null before a first run."""

    total_runs: int
    success_rate: float | None
    avg_duration_ms: int | None
    last_run_at: str | None
    credits_used_this_month: int = Field(description="The agent's charges this UTC calendar month.")


class Agent(BaseModel):
    """An agent: its definition, its status for your organization and its stats. System agents have
    `org_id` "system", type `system`, and no creation time."""

    id: str
    org_id: str
    name: str
    description: str
    type: Literal["system", "template", "custom", "cloned"]
    status: Literal["active", "paused", "draft", "error"]
    category: str | None
    trigger: Trigger | None
    conditions: list[Filter]
    steps: list[Step]
    conflict_behavior: Literal["additive", "override", "exclusive"]
    client_scope: ClientScope
    execution_limit: ExecutionLimit | None
    created_at: str | None
    updated_at: str | None
    stats: AgentStats


class AgentList(BaseModel):
    agents: list[Agent]
    total: int


class Template(BaseModel):
    """A ready definition to clone (POST /api/templates/{id}/clone)."""

    id: str
    category: Literal["operations", "security", "billing", "hr", "custom"]
    name: str
    description: str
    version: str
    trigger: Trigger
    conditions: list[Filter]
    steps: list[Step]
    conflict_behavior: Literal["additive", "override", "exclusive"]
    client_scope: ClientScope


class TemplateList(BaseModel):
    templates: list[Template]


class FilterableField(BaseModel):
    path: str
    label: str
    type: Literal["string", "number", "enum", "boolean"]
    enum_values: list[str] | None = None


class CatalogEvent(BaseModel):
    """An event type agents may be triggered by; `id` is `source_product:event_type`."""

    id: str
    source_product: str
    event_type: str
    category: str
    display_name: str
    description: str
    filterable_fields: list[FilterableField]
    sample_payload: dict[str, Any]


class EventCatalog(BaseModel):
    events: list[CatalogEvent]


class Credits(BaseModel):
    """This UTC calendar month's credits of your organization (in your key's mode)."""

    org_id: str
    month: str = Field(description="YYYY-MM, UTC.")
    total_used: int
    allocation: int
    remaining: int
    by_agent: dict[str, int]
    by_model: dict[str, int] = Field(description="Per model tier: quick, standard, premium, expert.")
    updated_at: str | None = Field(description="When the last charge of the month was made; null before any.")


class MonthCredits(BaseModel):
    month: str
    total_used: int
    allocation: int


class CreditHistory(BaseModel):
    history: list[MonthCredits] = Field(description="The last 12 months, this one first.")


class ExecutionSummary(BaseModel):
    """An execution in a list: `credits_used` is the ledger's sum for it."""

    id: str
    agent_id: str
    agent_name: str | None
    status: Literal["pending", "running", "waiting_approval", "completed", "failed", "cancelled"]
    reason: str | None = Field(description="Why it failed or was cancelled: approval_expired, approval_denied, "
                                           "credit_insufficient, llm_not_configured, template_error, cancelled …")
    error: str | None
    retry_of: str | None
    credits_used: int
    created_at: str
    started_at: str | None
    completed_at: str | None


class ExecutionList(BaseModel):
    executions: list[ExecutionSummary]
    total: int = Field(description="Every execution the filters match.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class TriggerEvent(BaseModel):
    id: str = Field(description="The event's id on the bus (`evt_…`), as the ingest answer gave it.")
    event_key: str = Field(description="What agents de-duplicate on: the envelope's `id`, else the event's own.")
    event_type: str
    source_product: str
    client_id: str | None
    payload: dict[str, Any]
    metadata: dict[str, Any]
    received_at: str


class StepRun(BaseModel):
    """One step's receipt. `status`: completed, failed, skipped, or waiting_approval / waiting while it waits."""

    step_id: str
    step_type: Literal["ai_reason", "product_action", "notification", "approval_gate", "branch", "wait"]
    status: Literal["completed", "failed", "skipped", "waiting_approval", "waiting"]
    output: Any = Field(description="What the step produced (JSON); later steps read it as steps.<id>.output.")
    error: str | None
    credits_used: int
    duration_ms: int | None
    started_at: str | None
    completed_at: str | None


class Execution(ExecutionSummary):
    """An execution with its trigger event and step-by-step trace."""

    trigger_event: TriggerEvent | None
    steps: list[StepRun]


COMPONENTS: dict[str, Any] = {}
AGENT_CREATE = openapi.model_schema(AgentCreate, COMPONENTS)
AGENT_UPDATE = openapi.model_schema(AgentUpdate, COMPONENTS)
CLONE = openapi.model_schema(CloneRequest, COMPONENTS)


def refine(schemas: dict[str, Any]) -> None:
    """A filter's ``value`` for eq and ne, and each item for in and not_in, is any JSON value the input
    rules accept (the boundary checks its keys and strings)."""
    for name, schema in schemas.items():
        value = schema.get("properties", {}).get("value")
        if name.startswith("FilterEquals") and value is not None:
            schema["properties"]["value"] = {**openapi.JSON_VALUE_REF, "description": value.get("description")}
        elif name.startswith("FilterList") and value is not None:
            value["items"] = openapi.JSON_VALUE_REF
