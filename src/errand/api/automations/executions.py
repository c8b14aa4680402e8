"""Executions: list, detail, cancel, retry (spec/automations-api.txt "Executions"). Each route
only translates: the rules live in :mod:`errand.automations.executions`, reached through the
automations service.

Reads take any key of the organization; cancel and retry need an admin key.
"""

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from errand.api import openapi as doc
from errand.api.automations import bodies
from errand.api.automations.auth import Caller
from errand.api.common import JSONBody, core_of
from errand.automations import service as automations_service
from errand.automations.schemas import ExecutionView
from errand.kit import clock, inputs
from errand.kit.errors import InvalidRequest

router = APIRouter()

AgentId = inputs.text(60, min_length=1)
ExecutionStatus = Literal["pending", "running", "completed", "failed", "cancelled", "waiting_approval"]


def execution_body(execution: ExecutionView) -> dict[str, Any]:
    """The contract's execution record; with its trigger event and steps when it is the detail."""
    body: dict[str, Any] = {
        "id": execution.id, "agent_id": execution.agent_id, "agent_name": execution.agent_name,
        "status": execution.status, "reason": execution.reason, "error": execution.error,
        "retry_of": execution.retry_of, "credits_used": execution.credits_used,
        "created_at": clock.iso(execution.created_at), "started_at": clock.iso(execution.started_at),
        "completed_at": clock.iso(execution.completed_at),
    }
    if execution.steps is not None:
        body["trigger_event"] = execution.trigger_event
        body["steps"] = [{"step_id": s.step_id, "step_type": s.step_type, "status": s.status, "output": s.output,
                          "error": s.error, "credits_used": s.credits_used, "duration_ms": s.duration_ms,
                          "started_at": clock.iso(s.started_at), "completed_at": clock.iso(s.completed_at)}
                         for s in execution.steps]
    return body


def _instant(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 date-time with a time zone (``2026-03-01T00:00:00Z``), else InvalidRequest
    naming ``name``: never a bare number (which pydantic would read as a Unix time)."""
    if value is None:
        return None
    problem = InvalidRequest(f"{name} must be an ISO 8601 date-time with a time zone (e.g. 2026-03-01T00:00:00Z).",
                             details=[{"path": name, "message": "must be an ISO 8601 date-time with a time zone"}])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise problem from None
    if "T" not in value.upper() or parsed.tzinfo is None:
        raise problem
    return parsed


@router.get("/executions", summary="List executions", **doc.describe(bodies.ExecutionList))
async def list_executions(
    request: Request, caller: Caller,
    agent_id: AgentId | None = Query(default=None),  # type: ignore[valid-type]
    status: ExecutionStatus | None = Query(default=None),
    from_: str | None = Query(default=None, alias="from", max_length=40, description="ISO 8601 start (inclusive).",
                              json_schema_extra={"format": "date-time"}),
    to: str | None = Query(default=None, max_length=40, description="ISO 8601 end (exclusive).",
                           json_schema_extra={"format": "date-time"}),
    limit: int = Query(default=50, ge=1, le=200),
    cursor: str | None = Query(default=None, min_length=1, max_length=500,
                               description="The `next_cursor` of the last page."),
) -> JSONBody:
    """Your organization's executions, newest first; `agent_id`, `status`, `from` and `to` narrow them."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        page = await automations_service.executions.list_executions(
            session, caller, agent_id=agent_id, status=status, since=_instant("from", from_), until=_instant("to", to),
            limit=limit, cursor=cursor)
    return JSONBody({"executions": [execution_body(e) for e in page.executions], "total": page.total,
                     "next_cursor": page.next_cursor})


@router.get("/executions/{execution_id}", summary="Get an execution", **doc.describe(bodies.Execution, 404))
async def get_execution(execution_id: str, request: Request, caller: Caller) -> JSONBody:
    """One execution with its trigger event and the trace of every step: status, output, credits, duration."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        execution = await automations_service.executions.get_execution(session, caller, execution_id)
    return JSONBody(execution_body(execution))


@router.post("/executions/{execution_id}/cancel", summary="Cancel an execution",
             **doc.describe(bodies.Execution, 403, 404, 409))
async def cancel_execution(execution_id: str, request: Request, caller: Caller) -> JSONBody:
    """Cancel a pending, running or waiting execution: its remaining steps are skipped and an open
    approval gate is denied. Any other status is 409 `invalid_state`. Needs an admin key."""
    async with core_of(request).db.unit_of_work() as session:
        execution = await automations_service.executions.cancel_execution(session, caller, execution_id)
    return JSONBody(execution_body(execution))


@router.post("/executions/{execution_id}/retry", status_code=201, summary="Retry an execution",
             **doc.describe(bodies.Execution, 402, 403, 404, 409, status=201))
async def retry_execution(execution_id: str, request: Request, caller: Caller) -> JSONBody:
    """Run the agent again from its first step with the original trigger event: a new execution with
    `retry_of`. Only failed or cancelled executions (else 409 `invalid_state`); AI steps are charged
    again (402 `credit_insufficient` when the first cannot be paid). Needs an admin key."""
    async with core_of(request).db.unit_of_work() as session:
        execution = await automations_service.executions.retry_execution(session, caller, execution_id)
    return JSONBody(execution_body(execution), status_code=201)
