"""What the automations service exchanges: agent definitions (their shape), views, credits.

A definition is checked in two steps. Its *shape* (these models: types, enums, lengths, a
filter value that fits its operator, no unknown field) is checked whenever it is written, draft
or not; its *meaning* (a trigger and at least one step, unique step ids, templates that parse
and name only earlier steps, a branch condition that compiles as CEL, an output JSON Schema that
is one, a wait of at most 30 days) when it is activated
(:mod:`errand.automations.validation`), so a draft may be saved half-written. Either failure is
400 ``invalid_agent_config`` naming the field path, e.g. ``steps[2].model``.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StrictBool, StrictFloat, StrictInt, StrictStr,
    StringConstraints, Tag, field_validator,
)

from errand.kit.inputs import text
from errand.outbox.schemas import SOURCE_PRODUCT

ModelTier = Literal["quick", "standard", "premium", "expert"]
MODEL_TIERS: tuple[str, ...] = ("quick", "standard", "premium", "expert")
CREDITS_BY_TIER: dict[str, int] = {"quick": 5, "standard": 20, "premium": 100, "expert": 200}
"""What one completed ai_reason step costs (RESOLUTIONS.md "Automations dialect"); every other step costs 0."""
DEFAULT_MONTHLY_CREDITS = 100_000
SYSTEM_ORG = "system"
"""The ``org_id`` of Errand's own agents, visible to every organization."""

AgentType = Literal["system", "template", "custom", "cloned"]
AgentStatusName = Literal["active", "paused", "draft", "error"]
AGENT_STATUSES: tuple[str, ...] = ("active", "paused", "draft", "error")
AGENT_TYPES: tuple[str, ...] = ("system", "template", "custom", "cloned")
OPERATORS: tuple[str, ...] = ("eq", "ne", "gt", "lt", "contains", "in", "not_in")
ConflictBehavior = Literal["additive", "override", "exclusive"]
Channel = Literal["email", "sms", "webhook", "chat"]
STEP_TYPES: tuple[str, ...] = ("ai_reason", "product_action", "notification", "approval_gate", "branch", "wait")
PRODUCT_OPERATIONS: tuple[str, ...] = (
    "restaurant.book", "restaurant.modify", "restaurant.cancel", "execution_job.create", "execution_job.cancel",
    "approval.get",
)
"""The Errand operations a ``product_action`` step may run (the same service functions as REST)."""
ProductOperation = Literal["restaurant.book", "restaurant.modify", "restaurant.cancel", "execution_job.create",
                           "execution_job.cancel", "approval.get"]
END = "end"
"""A branch target that ends the execution."""

StepId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
"""A step's id: an identifier, so templates (``steps.<id>.output``) and CEL can name it."""
Slug = Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
EventType = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}$")]
FieldPath = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$")]
Duration = Annotated[str, StringConstraints(strict=True, pattern=r"^[1-9][0-9]{0,5}[smhd]$")]
"""A wait: a whole number of seconds, minutes, hours or days (``90s``, ``30m``, ``2h``, ``1d``)."""
Template = text(4000, multiline=True)
"""Text rendered with Jinja2's sandbox: ``{{event_payload.x}}``, ``{{steps.<id>.output.x}}``."""
Name = text(200, min_length=1, strip=True)


def _number_not_text(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("must be an integer")
    return value


def count(ge: int, le: int) -> Any:
    """An integer from ``ge`` to ``le``: ``3`` (or ``3.0``, an integer in JSON Schema's terms),
    never ``true`` or ``"3"``."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_number_not_text)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Filter(_Strict):
    field: FieldPath


class FilterEquals(_Filter):
    """``field`` equals (eq) or differs from (ne) ``value``."""

    operator: Literal["eq", "ne"]
    value: Any = Field(description="Any JSON value.")


class FilterCompare(_Filter):
    """``field`` is a number greater (gt) or less (lt) than ``value``."""

    operator: Literal["gt", "lt"]
    value: StrictInt | StrictFloat


class FilterContains(_Filter):
    """``field`` (a string or a list) contains ``value``."""

    operator: Literal["contains"]
    value: StrictStr | StrictInt | StrictFloat | StrictBool


class FilterList(_Filter):
    """``field`` is (in) or is not (not_in) one of ``value``."""

    operator: Literal["in", "not_in"]
    value: list[Any] = Field(max_length=1000)


Filter = Annotated[FilterEquals | FilterCompare | FilterContains | FilterList, Field(discriminator="operator")]
"""``field`` (a dotted path into the event's payload) tested by ``operator`` against ``value``;
matching is case-sensitive."""


class Trigger(_Strict):
    """An event on the bus: ``source_product`` (``errand`` for Errand's own) and ``event_type``,
    narrowed by ``filters`` (all must hold)."""

    type: Literal["bus_event"]
    source_product: Slug
    event_type: EventType
    filters: list[Filter] = Field(default=[], max_length=20)


class _Step(_Strict):
    id: StepId
    name: text(200) | None = None  # type: ignore[valid-type]


class AiReasonStep(_Step):
    """Reason with an LLM of a ``model`` tier over a prompt; the answer must fit ``output_schema``."""

    type: Literal["ai_reason"]
    model: ModelTier
    prompt: text(20_000, min_length=1, multiline=True)  # type: ignore[valid-type]
    output_schema: dict[str, Any] = Field(default={"type": "object"},
                                          description="The JSON Schema the model's answer must fit.")


class ProductActionStep(_Step):
    """Run an Errand ``operation`` as the organization; string ``params`` may be templates."""

    type: Literal["product_action"]
    operation: ProductOperation
    params: dict[str, Any] = {}


class NotificationStep(_Step):
    """Send ``body`` (a template) over one ``channel`` to ``recipients``: addresses (or templates
    giving them), or ``role:traveler`` (the job's traveler), ``role:admins``, ``role:finance``
    (the organization's contacts), resolved when the step runs: event payloads carry no personal data."""

    type: Literal["notification"]
    channel: Channel
    recipients: list[text(320, min_length=1)] = Field(min_length=1, max_length=50)  # type: ignore[valid-type]
    subject: Template | None = None  # type: ignore[valid-type]
    body: text(4000, min_length=1, multiline=True)  # type: ignore[valid-type]


class ApprovalGateStep(_Step):
    """Wait for a human decision on ``message``; denied ends the execution, expired fails it."""

    type: Literal["approval_gate"]
    message: text(4000, min_length=1, multiline=True)  # type: ignore[valid-type]
    timeout_minutes: count(1, 10_080) = 120  # type: ignore[valid-type]


class BranchStep(_Step):
    """Choose the next step by a CEL ``condition`` over ``event_payload`` and ``steps``: ``if_true``
    or ``if_false``: a later step's id, or ``end`` to finish the execution (absent: the next step)."""

    type: Literal["branch"]
    condition: text(1000, min_length=1)  # type: ignore[valid-type]
    if_true: StepId | None = None
    if_false: StepId | None = None


class WaitStep(_Step):
    """Pause the execution for ``duration`` (at most 30 days)."""

    type: Literal["wait"]
    duration: Duration


Step = Annotated[AiReasonStep | ProductActionStep | NotificationStep | ApprovalGateStep | BranchStep | WaitStep,
                 Field(discriminator="type")]


class ScopeInclude(_Strict):
    include: list[text(100, min_length=1)] = Field(max_length=1000)  # type: ignore[valid-type]


class ScopeExclude(_Strict):
    exclude: list[text(100, min_length=1)] = Field(max_length=1000)  # type: ignore[valid-type]


def _scope_kind(value: Any) -> str | None:
    if isinstance(value, ScopeInclude | ScopeExclude):
        return "scope_include" if isinstance(value, ScopeInclude) else "scope_exclude"
    if isinstance(value, str):
        return "scope_all"
    if isinstance(value, dict) and len(value) == 1:
        return {"include": "scope_include", "exclude": "scope_exclude"}.get(next(iter(value)))
    return None


_SCOPE_RULE = 'must be "all", {"include": [client ids]} or {"exclude": [client ids]}'
SCOPE_TAGS = frozenset({"scope_all", "scope_include", "scope_exclude"})
ClientScope = Annotated[
    Annotated[Literal["all"], Tag("scope_all")] | Annotated[ScopeInclude, Tag("scope_include")]
    | Annotated[ScopeExclude, Tag("scope_exclude")],
    Discriminator(_scope_kind, custom_error_type="value_error", custom_error_context={"error": _SCOPE_RULE}),
]
"""Which clients' events the agent takes (the event's ``client_id``)."""


class ExecutionLimit(_Strict):
    """At most ``max_per_hour`` / ``max_per_day`` executions, and ``cooldown_seconds`` between two."""

    max_per_hour: count(1, 100_000) | None = None  # type: ignore[valid-type]
    max_per_day: count(1, 1_000_000) | None = None  # type: ignore[valid-type]
    cooldown_seconds: count(0, 604_800) | None = None  # type: ignore[valid-type]


class AgentCreate(_Strict):
    """A new custom agent, saved as a draft: only its shape is checked until it is activated."""

    name: Name  # type: ignore[valid-type]
    description: text(2000, multiline=True) = ""  # type: ignore[valid-type]
    category: Slug | None = None
    trigger: Trigger | None = None
    conditions: list[Filter] = Field(default=[], max_length=20)
    steps: list[Step] = Field(default=[], max_length=50)
    conflict_behavior: ConflictBehavior = "additive"
    client_scope: ClientScope = "all"
    execution_limit: ExecutionLimit | None = None


class AgentUpdate(_Strict):
    """A change: the fields given replace the stored ones (``trigger``, ``conditions`` and ``steps``
    whole); ``status`` ``active`` activates after full validation."""

    # Fields that cannot be null default to None without allowing it: an explicit null is refused.
    name: Name = None  # type: ignore[valid-type, assignment]
    description: text(2000, multiline=True) | None = None  # type: ignore[valid-type]
    category: Slug | None = None
    trigger: Trigger | None = None
    conditions: list[Filter] = Field(default=None, max_length=20)  # type: ignore[assignment]
    steps: list[Step] = Field(default=None, max_length=50)  # type: ignore[assignment]
    conflict_behavior: ConflictBehavior = None  # type: ignore[assignment]
    client_scope: ClientScope = None  # type: ignore[assignment]
    execution_limit: ExecutionLimit | None = None
    status: Literal["draft", "active", "paused"] = None  # type: ignore[assignment]


class CloneRequest(_Strict):
    """The clone's name; the original's (a template's name, or "<agent> (copy)") when absent."""

    name: Name | None = None  # type: ignore[valid-type]


DEFINITION_FIELDS: tuple[str, ...] = ("name", "description", "category", "trigger", "conditions", "steps",
                                      "conflict_behavior", "client_scope", "execution_limit")


@dataclass(frozen=True)
class AgentStats:
    """An agent's record from its executions and the credits ledger (this UTC calendar month)."""

    total_runs: int = 0
    success_rate: float | None = None
    avg_duration_ms: int | None = None
    last_run_at: datetime | None = None
    credits_used_this_month: int = 0


@dataclass(frozen=True)
class AgentView:
    """An agent as the caller sees it: a system agent with the caller's own status for it."""

    id: str
    org_id: str
    name: str
    description: str
    type: str
    status: str
    category: str | None
    trigger: dict[str, Any] | None
    conditions: list[Any]
    steps: list[Any]
    conflict_behavior: str
    client_scope: Any
    execution_limit: dict[str, Any] | None
    created_at: datetime | None
    updated_at: datetime | None
    stats: AgentStats = field(default_factory=AgentStats)


@dataclass(frozen=True)
class CreditUsage:
    """One UTC calendar month of an organization's credits (``month`` is ``YYYY-MM``)."""

    org_id: str
    month: str
    total_used: int
    allocation: int
    remaining: int
    by_agent: dict[str, int]
    by_model: dict[str, int]
    updated_at: datetime | None


@dataclass(frozen=True)
class MonthUsage:
    month: str
    total_used: int
    allocation: int


EXECUTION_STATUSES: tuple[str, ...] = ("pending", "running", "waiting_approval", "completed", "failed", "cancelled")
ACTIVE_EXECUTION_STATUSES: tuple[str, ...] = ("pending", "running", "waiting_approval")
"""Executions that may still run a step: cancel works on these (RESOLUTIONS.md)."""
RETRYABLE_EXECUTION_STATUSES: tuple[str, ...] = ("failed", "cancelled")
RUN_EXECUTION = "errand.automations.run_execution"
"""The task that advances an execution step by step (args: ``execution_id``)."""
MATCH_EVENT = "errand.automations.match_event"
"""The task that matches an event taken in against the agents (args: ``event_id``)."""
EXECUTIONS_PAGE_MAX = 200


@dataclass(frozen=True)
class StepTrace:
    """One step of an execution's trace, from its receipt; ``credits_used`` is the ledger's sum
    for the step, ``duration_ms`` in milliseconds."""

    step_id: str
    step_type: str
    status: str
    output: Any
    error: str | None
    credits_used: int
    duration_ms: int | None
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class ExecutionView:
    """An execution as its organization sees it: ``credits_used`` is the ledger's sum for it;
    ``trigger_event`` and ``steps`` are filled for the detail view only."""

    id: str
    agent_id: str
    agent_name: str | None
    status: str
    reason: str | None
    error: str | None
    retry_of: str | None
    credits_used: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    trigger_event: dict[str, Any] | None = None
    steps: list[StepTrace] | None = None


@dataclass(frozen=True)
class ExecutionPage:
    executions: list[ExecutionView]
    total: int
    next_cursor: str | None


# --- events on the bus (POST /api/events/ingest) ------------------------------------------

MAX_PAYLOAD_BYTES = 64 * 1024
"""An ingested event's ``payload``, as compact JSON."""
MAX_METADATA_BYTES = 8 * 1024
"""An ingested event's ``metadata``, as compact JSON."""


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


class EventEnvelope(BaseModel):
    """An event a product sends (``POST /api/events/ingest``). Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    id: text(200, min_length=1) | None = Field(  # type: ignore[valid-type]
        default=None, description="The product's own id of the event: the same id is run at most once per "
                                  "agent within 5 minutes.")
    event_type: EventType = Field(description="e.g. `ticket.escalated` (the catalog: GET /api/events).")
    source_product: Slug = Field(description="The product that sent it, e.g. `psa`; `errand` is reserved.",
                                 json_schema_extra={"not": {"const": SOURCE_PRODUCT}})
    client_id: text(100, min_length=1) | None = Field(  # type: ignore[valid-type]
        default=None, description="The client the event is about (agents' `client_scope`).")
    payload: dict[str, Any] = Field(description=f"The event's data: a JSON object of at most "
                                                f"{MAX_PAYLOAD_BYTES // 1024} KiB.")
    metadata: dict[str, Any] = Field(default={}, description="Anything about the event itself; "
                                                             "`agent_triggered: true` makes no agent run.")

    @field_validator("source_product")
    @classmethod
    def _not_errand(cls, value: str) -> str:
        if value == SOURCE_PRODUCT:
            raise ValueError(f"'{SOURCE_PRODUCT}' is reserved for Errand's own events")
        return value

    @field_validator("payload")
    @classmethod
    def _payload_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _size(value) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"must be at most {MAX_PAYLOAD_BYTES // 1024} KiB as JSON")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if _size(value) > MAX_METADATA_BYTES:
            raise ValueError(f"must be at most {MAX_METADATA_BYTES // 1024} KiB as JSON")
        return value


@dataclass(frozen=True)
class Accepted:
    """An event taken onto the bus."""

    id: str
    event_key: str
    received_at: datetime
