"""Agents, templates, the event catalog and credits (spec/automations-api.txt). Each route only
translates: the rules live in :mod:`errand.automations.service`.

Reads take any key of the organization; changes need an admin key. Bodies are read as the input
boundary parsed them and checked by the service, so a bad definition is 400
``invalid_agent_config`` naming the field (``steps[2].model``).
"""

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from errand.api import openapi as doc
from errand.api.automations import bodies
from errand.api.automations.auth import Caller
from errand.api.common import JSONBody, core_of
from errand.automations import service as automations_service
from errand.automations.schemas import AgentView, CreditUsage
from errand.kit import clock, inputs
from errand.kit.boundary import PARSED_BODY

router = APIRouter()

AgentStatus = Literal["active", "paused", "draft", "error"]
AgentType = Literal["system", "template", "custom", "cloned"]
TemplateCategory = Literal["operations", "security", "billing", "hr", "custom"]
EventCategory = Literal["service_desk", "security", "operations", "finance", "compliance", "communications",
                        "onboarding", "client_success"]
Category = inputs.text(40)


async def _json(request: Request, *, required: bool = True) -> Any:
    """The body as the input boundary parsed it. None sent: None when ``required`` (the service
    refuses it, as it refuses a JSON ``null``), else ``{}``."""
    state = request.scope.get("state") or {}
    if PARSED_BODY in state:
        return state[PARSED_BODY]
    raw = await request.body()
    return inputs.parse_json(raw) if raw else (None if required else {})


def _optional_body(ref: dict[str, Any], description: str) -> dict[str, Any]:
    return {"requestBody": {"required": False, "description": description,
                            "content": {"application/json": {"schema": ref}}}}


async def _created(request: Request, make: Callable[[Any], Awaitable[AgentView]]) -> JSONBody:
    """201 with the agent ``make(session)`` creates in the request's unit of work."""
    async with core_of(request).db.unit_of_work() as session:
        agent = await make(session)
    return JSONBody(agent_body(agent), status_code=201)


def agent_body(agent: AgentView) -> dict[str, Any]:
    """The contract's agent object, with its full definition and stats."""
    stats = agent.stats
    return {
        "id": agent.id, "org_id": agent.org_id, "name": agent.name, "description": agent.description,
        "type": agent.type, "status": agent.status, "category": agent.category, "trigger": agent.trigger,
        "conditions": agent.conditions, "steps": agent.steps, "conflict_behavior": agent.conflict_behavior,
        "client_scope": agent.client_scope, "execution_limit": agent.execution_limit,
        "created_at": clock.iso(agent.created_at), "updated_at": clock.iso(agent.updated_at),
        "stats": {"total_runs": stats.total_runs, "success_rate": stats.success_rate,
                  "avg_duration_ms": stats.avg_duration_ms, "last_run_at": clock.iso(stats.last_run_at),
                  "credits_used_this_month": stats.credits_used_this_month},
    }


def credits_body(usage: CreditUsage) -> dict[str, Any]:
    return {"org_id": usage.org_id, "month": usage.month, "total_used": usage.total_used,
            "allocation": usage.allocation, "remaining": usage.remaining, "by_agent": usage.by_agent,
            "by_model": usage.by_model, "updated_at": clock.iso(usage.updated_at)}


@router.get("/agents", summary="List agents", **doc.describe(bodies.AgentList))
async def list_agents(request: Request, caller: Caller, status: AgentStatus | None = Query(default=None),
                      type: AgentType | None = Query(default=None),
                      category: Category | None = Query(default=None)) -> JSONBody:  # type: ignore[valid-type]
    """Your organization's agents and the system agents (`org_id` "system"), each with its stats;
    `status`, `type` and `category` narrow the list."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        agents = await automations_service.list_agents(session, caller, status=status, type=type, category=category)
    return JSONBody({"agents": [agent_body(a) for a in agents], "total": len(agents)})


@router.post("/agents", status_code=201, summary="Create an agent", openapi_extra=doc.json_body(
    bodies.AGENT_CREATE, "The definition: name, trigger, conditions, steps and how it runs beside others."),
    **doc.describe(bodies.Agent, 403, status=201))
async def create_agent(request: Request, caller: Caller) -> JSONBody:
    """Create a custom agent in `draft`. A draft may be incomplete: the whole definition is checked when
    you activate it (PUT with `"status": "active"`). Needs an admin key."""
    body = await _json(request)
    return await _created(request, lambda session: automations_service.create_agent(session, caller, body))


@router.get("/agents/{agent_id}", summary="Get an agent", **doc.describe(bodies.Agent, 404))
async def get_agent(agent_id: str, request: Request, caller: Caller) -> JSONBody:
    """The full definition (trigger, conditions, steps) and stats of one agent."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        agent = await automations_service.get_agent(session, caller, agent_id)
    return JSONBody(agent_body(agent))


@router.put("/agents/{agent_id}", summary="Update an agent", openapi_extra=doc.json_body(
    bodies.AGENT_UPDATE, "Only the fields to change; `trigger`, `conditions` and `steps` replace the stored ones "
                         "whole. `\"status\": \"active\"` activates the agent after checking its whole definition."),
    **doc.describe(bodies.Agent, 403, 404))
async def update_agent(agent_id: str, request: Request, caller: Caller) -> JSONBody:
    """Change an agent, or activate, pause or return it to draft. Activating checks the whole definition
    (400 `invalid_agent_config` naming the field) and your limit of active agents (429
    `agent_limit_reached`). A system agent takes only `{"status": "paused"}` or `{"status": "active"}`, for
    your organization alone (403 otherwise): clone it to change it. Needs an admin key."""
    core = core_of(request)
    async with core.db.unit_of_work() as session:
        agent = await automations_service.update_agent(session, caller, agent_id, await _json(request),
                                                       agent_limit=core.settings.automations_agent_limit)
    return JSONBody(agent_body(agent))


@router.delete("/agents/{agent_id}", summary="Delete an agent", status_code=204,
               **doc.describe(None, 403, 404, status=204))
async def delete_agent(agent_id: str, request: Request, caller: Caller) -> Response:
    """Delete one of your agents (its credit charges stay in the ledger). System agents cannot be
    deleted (403): pause them instead. Needs an admin key."""
    async with core_of(request).db.unit_of_work() as session:
        await automations_service.delete_agent(session, caller, agent_id)
    return Response(status_code=204)


@router.post("/agents/{agent_id}/clone", status_code=201, summary="Clone an agent", openapi_extra=_optional_body(
    bodies.CLONE, "The clone's `name`; \"<name> (copy)\" when absent."),
    **doc.describe(bodies.Agent, 403, 404, status=201))
async def clone_agent(agent_id: str, request: Request, caller: Caller) -> JSONBody:
    """Copy an agent you can see (a system agent too) into a new `draft` of type `cloned`. Needs an admin key."""
    body = await _json(request, required=False)
    return await _created(request, lambda session: automations_service.clone_agent(session, caller, agent_id, body))


@router.get("/templates", summary="List templates", **doc.describe(bodies.TemplateList))
async def list_templates(caller: Caller, category: TemplateCategory | None = Query(default=None)) -> JSONBody:
    """Ready agent definitions, by `category`, to clone as drafts."""
    return JSONBody({"templates": automations_service.list_templates(category)})


@router.post("/templates/{template_id}/clone", status_code=201, summary="Clone a template",
             openapi_extra=_optional_body(bodies.CLONE, "The agent's `name`; the template's when absent."),
             **doc.describe(bodies.Agent, 403, 404, status=201))
async def clone_template(template_id: str, request: Request, caller: Caller) -> JSONBody:
    """A new `draft` agent of type `template` from a template, ready to adjust and activate. Needs an admin key."""
    body = await _json(request, required=False)
    return await _created(request, lambda session: automations_service.clone_template(
        session, caller, template_id, body))


@router.get("/events", summary="List the event catalog", **doc.describe(bodies.EventCatalog))
async def event_catalog(caller: Caller,
                        source_product: Category | None = Query(default=None),  # type: ignore[valid-type]
                        category: EventCategory | None = Query(default=None)) -> JSONBody:
    """Every event type a trigger may name: Errand's own (`source_product` "errand") and the products'
    (psa, defend, rmm…), with the fields filters may test and a sample payload."""
    return JSONBody({"events": automations_service.event_catalog(source_product, category)})


@router.get("/credits", summary="This month's credits", **doc.describe(bodies.Credits))
async def credits(request: Request, caller: Caller) -> JSONBody:
    """Credits of this UTC calendar month: your allocation, what was used (per agent and model tier)
    and what remains. Test keys see test-mode usage."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        usage = await automations_service.credit_usage(session, caller)
    return JSONBody(credits_body(usage))


@router.get("/credits/history", summary="Credits of the last 12 months", **doc.describe(bodies.CreditHistory))
async def credit_history(request: Request, caller: Caller) -> JSONBody:
    """What was used in each of the last 12 UTC calendar months, this one first, with the allocation."""
    async with core_of(request).db.unit_of_work(read_only=True) as session:
        months = await automations_service.credit_history(session, caller)
    return JSONBody({"history": [{"month": m.month, "total_used": m.total_used, "allocation": m.allocation}
                                 for m in months]})
