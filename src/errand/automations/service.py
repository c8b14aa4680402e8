"""Agents, templates, the event catalog and credits: what the automations dialect and the CLI call.

Every function reads or writes the database through the ``session`` it is given and never
commits (the edge does). The caller's organization and mode (its key's ``env``) scope every
read: another organization's agent, or one made with a key of the other mode, is not found.
System agents (``org_id`` "system", :mod:`errand.automations.system_agents`) are visible to
every organization and mode; each organization may only pause or resume them for itself.

Rules: spec/automations-api.txt and RESOLUTIONS.md ("Automations dialect"). Where they are
silent: a draft keeps whatever fits the definition's shape and is checked in full when it is
activated (and whenever an active agent changes); every change is audited (subject ``agent``);
credits are counted per mode (test keys spend test credits) against one monthly allocation per
organization; the agent limit counts active agents of the organization's own (custom, cloned,
template) in the key's mode.
"""

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.automations import catalog, executions, system_agents, templates, validation
from errand.automations.errors import AgentLimitReached, AgentNotFound, TemplateNotFound
from errand.automations.schemas import (
    AGENT_STATUSES, AGENT_TYPES, DEFAULT_MONTHLY_CREDITS, DEFINITION_FIELDS, MODEL_TIERS, AgentCreate,
    AgentStats, AgentUpdate, AgentView, CloneRequest, CreditUsage, MonthUsage,
)
from errand.audit import service as audit_service
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import clock
from errand.kit.errors import Forbidden, InvalidRequest
from errand.kit.ids import new_id
from errand.models import Agent, AgentStatus, CreditAllocation, CreditEntry, Organization, get_owned

MANAGING = "Managing agents"


# --- agents -------------------------------------------------------------------------------


async def list_agents(session: AsyncSession, principal: Principal, *, status: str | None = None,
                      type: str | None = None, category: str | None = None) -> list[AgentView]:
    """The caller's agents and the system agents, system first, then oldest first; each filter
    narrows the list. InvalidRequest for an unknown ``status`` or ``type``."""
    _check_choice("status", status, AGENT_STATUSES)
    _check_choice("type", type, AGENT_TYPES)
    statuses = await _system_statuses(session, principal)
    views = [_system_view(agent, statuses.get(agent["id"], "active")) for agent in system_agents.SYSTEM_AGENTS]
    rows = (await session.execute(select(Agent).where(*_scope(principal)).order_by(Agent.id))).scalars().all()
    views += [_view(row) for row in rows]
    wanted = [v for v in views if (status is None or v.status == status) and (type is None or v.type == type)
              and (category is None or v.category == category)]
    credits = await _credits_by_agent(session, principal, _month_start(clock.now()))
    runs = await executions.stats(session, principal, [view.id for view in wanted])
    return [_with_stats(view, runs.get(view.id), credits.get(view.id, 0)) for view in wanted]


async def get_agent(session: AsyncSession, principal: Principal, agent_id: str) -> AgentView:
    """One agent with its full definition and stats; AgentNotFound outside the caller's scope."""
    view = await _find(session, principal, agent_id)
    credits = await _credits_by_agent(session, principal, _month_start(clock.now()), agent_id=agent_id)
    runs = await executions.stats(session, principal, [agent_id])
    return _with_stats(view, runs.get(agent_id), credits.get(agent_id, 0))


async def create_agent(session: AsyncSession, principal: Principal, body: Any) -> AgentView:
    """A new custom agent in ``draft`` from a JSON body (:class:`AgentCreate`).

    Forbidden unless an admin key; InvalidAgentConfig naming each field that breaks the shape."""
    identity_service.require_admin(principal, MANAGING)
    data = validation.parse(AgentCreate, body)
    return await _insert(session, principal, data.model_dump(mode="json"), type="custom", source_id=None)


async def update_agent(session: AsyncSession, principal: Principal, agent_id: str, body: Any, *,
                       agent_limit: int) -> AgentView:
    """Merge a JSON body (:class:`AgentUpdate`) into an agent: top-level fields replace the stored
    ones (``trigger``, ``conditions``, ``steps`` whole). ``status: active`` (or any change to an
    active agent) needs the whole definition to pass :func:`validation.check_complete`.

    A system agent takes only ``{"status": "paused" | "active"}``, stored for the caller's
    organization and mode; anything else is Forbidden. Raises Forbidden (not an admin key),
    AgentNotFound, InvalidAgentConfig, AgentLimitReached (activating past ``agent_limit``)."""
    identity_service.require_admin(principal, MANAGING)
    if agent_id in system_agents.BY_ID:
        return await _set_system_status(session, principal, agent_id, body)
    row = await get_owned(session, Agent, agent_id, _not_found(agent_id), lock=True, **_owner(principal))
    change = validation.parse(AgentUpdate, body)
    given = change.model_dump(mode="json", include=change.model_fields_set)
    status = given.pop("status", None)
    if "description" in given and given["description"] is None:
        given["description"] = ""
    merged = {**_definition(row), **given}
    becomes = status or row.status
    if becomes == "active":
        validation.check_complete(merged)
        if row.status != "active":
            await _check_limit(session, principal, agent_limit)
    for name, value in merged.items():
        setattr(row, name, value)
    if becomes != row.status:
        await _audit(session, principal, agent_id, "agent.status_changed", decision=becomes, previous=row.status)
    if given:
        await _audit(session, principal, agent_id, "agent.updated", fields=sorted(given))
    row.status = becomes
    row.updated_at = clock.now()
    await session.flush()
    return await get_agent(session, principal, agent_id)


async def delete_agent(session: AsyncSession, principal: Principal, agent_id: str) -> None:
    """Delete one of the organization's agents. Its ledger entries stay (the ledger is append-only).

    Its pending, running and waiting executions are cancelled first (spec: "Active executions
    are cancelled first"). Forbidden for a system agent (pause it instead) or without an admin
    key; AgentNotFound."""
    identity_service.require_admin(principal, MANAGING)
    if agent_id in system_agents.BY_ID:
        raise Forbidden("System agents cannot be deleted; pause one for your organization with "
                        'PUT /api/agents/{id} {"status": "paused"}.')
    row = await get_owned(session, Agent, agent_id, _not_found(agent_id), lock=True, **_owner(principal))
    await executions.cancel_active_for_agent(session, principal, agent_id)
    await session.delete(row)
    await _audit(session, principal, agent_id, "agent.deleted")
    await session.flush()


async def clone_agent(session: AsyncSession, principal: Principal, agent_id: str, body: Any) -> AgentView:
    """A draft copy (type ``cloned``) of an agent the caller sees, system agents included; the
    body may give its ``name`` (default "<name> (copy)"). Forbidden, AgentNotFound, InvalidAgentConfig."""
    identity_service.require_admin(principal, MANAGING)
    request = validation.parse(CloneRequest, body)
    source = await _find(session, principal, agent_id)
    definition = {name: getattr(source, name) for name in DEFINITION_FIELDS}
    definition["name"] = request.name or f"{source.name} (copy)"[:200]
    return await _insert(session, principal, definition, type="cloned", source_id=source.id)


# --- templates and the event catalog ------------------------------------------------------


def list_templates(category: str | None = None) -> list[dict[str, Any]]:
    """The templates (optionally of one ``category``), each with its trigger; InvalidRequest for
    an unknown category."""
    _check_choice("category", category, templates.CATEGORIES)
    return [_template_summary(t) for t in templates.TEMPLATES if category is None or t["category"] == category]


async def clone_template(session: AsyncSession, principal: Principal, template_id: str, body: Any) -> AgentView:
    """A draft agent of type ``template`` from a template; the body may give its ``name``
    (default: the template's). Forbidden, TemplateNotFound, InvalidAgentConfig."""
    identity_service.require_admin(principal, MANAGING)
    request = validation.parse(CloneRequest, body)
    template = templates.BY_ID.get(template_id)
    if template is None:
        raise TemplateNotFound(f"Template {template_id} not found.")
    definition = {name: template.get(name) for name in DEFINITION_FIELDS if name in template}
    definition.update(name=request.name or template["name"], description=template["description"],
                      category=template["agent_category"], execution_limit=None)
    return await _insert(session, principal, definition, type="template", source_id=template_id)


def event_catalog(source_product: str | None = None, category: str | None = None) -> list[dict[str, Any]]:
    """Every event type agents may be triggered by (:mod:`errand.automations.catalog`), filtered
    by ``source_product`` and ``category``; InvalidRequest for an unknown category."""
    _check_choice("category", category, catalog.CATEGORIES)
    return [e for e in catalog.EVENTS
            if (source_product is None or e["source_product"] == source_product)
            and (category is None or e["category"] == category)]


# --- credits ------------------------------------------------------------------------------


async def charge_credits(session: AsyncSession, *, organization_id: str, env: str, agent_id: str, credits: int,
                         model: str | None = None, execution_id: str | None = None, step_id: str | None = None,
                         at: datetime | None = None) -> str:
    """Append one charge to the ledger (the only way credits are spent); returns its id.
    Nothing updates or deletes a charge: every credit figure is a sum over them."""
    if credits < 0:
        raise InvalidRequest("A charge is never negative.")
    entry = CreditEntry(id=new_id("crd"), organization_id=organization_id, env=env, agent_id=agent_id,
                        execution_id=execution_id, step_id=step_id, model=model, credits=credits,
                        charged_at=at or clock.now())
    session.add(entry)
    await session.flush()
    return entry.id


async def credits_remaining(session: AsyncSession, organization_id: str, env: str) -> int:
    """What the organization may still spend in mode ``env`` this UTC calendar month: its
    allocation minus the ledger's sum (never below 0)."""
    start = _month_start(clock.now())
    used = (await session.execute(select(func.coalesce(func.sum(CreditEntry.credits), 0)).where(
        CreditEntry.organization_id == organization_id, CreditEntry.env == env, CreditEntry.charged_at >= start,
        CreditEntry.charged_at < _next_month(start)))).scalar_one()
    return max(await _allocation(session, organization_id) - int(used), 0)


async def credit_usage(session: AsyncSession, principal: Principal) -> CreditUsage:
    """This UTC calendar month's credits of the caller's organization and mode: the allocation, what
    was used (in total, per agent, per model tier) and what remains."""
    start = _month_start(clock.now())
    allocation = await _allocation(session, principal.organization_id)
    month = (CreditEntry.charged_at >= start, CreditEntry.charged_at < _next_month(start))
    by_agent = await _credits_by_agent(session, principal, start)
    by_model = {tier: 0 for tier in MODEL_TIERS}
    rows = await session.execute(select(CreditEntry.model, func.sum(CreditEntry.credits))
                                 .where(*_ledger(principal), *month).group_by(CreditEntry.model))
    for model, used in rows:
        if model is not None:
            by_model[model] = by_model.get(model, 0) + int(used)
    last = (await session.execute(select(func.max(CreditEntry.charged_at)).where(*_ledger(principal), *month))
            ).scalar_one_or_none()
    used = sum(by_agent.values())
    return CreditUsage(org_id=principal.organization_id, month=start.strftime("%Y-%m"), total_used=used,
                       allocation=allocation, remaining=max(allocation - used, 0), by_agent=by_agent,
                       by_model=by_model, updated_at=clock.as_utc(last) if last is not None else None)


async def credit_history(session: AsyncSession, principal: Principal, months: int = 12) -> list[MonthUsage]:
    """The last ``months`` UTC calendar months (this one first) of the caller's organization and
    mode, each with what was used and the organization's allocation."""
    start = _month_start(clock.now())
    starts = [start]
    for _ in range(months - 1):
        starts.append(_previous_month(starts[-1]))
    rows = (await session.execute(select(CreditEntry.charged_at, CreditEntry.credits).where(
        *_ledger(principal), CreditEntry.charged_at >= starts[-1], CreditEntry.charged_at < _next_month(start)))).all()
    used = {s.strftime("%Y-%m"): 0 for s in starts}
    for charged_at, credits in rows:
        used[clock.as_utc(charged_at).strftime("%Y-%m")] += credits
    allocation = await _allocation(session, principal.organization_id)
    return [MonthUsage(month=m, total_used=n, allocation=allocation) for m, n in used.items()]


async def set_allocation(session: AsyncSession, organization_name: str, monthly_credits: int) -> int:
    """Set an organization's monthly credits (``errand set-credits``); returns the previous figure.
    InvalidRequest for a negative figure or an organization that does not exist."""
    if monthly_credits < 0:
        raise InvalidRequest("The allocation must be 0 or more credits.")
    org = (await session.execute(select(Organization).where(Organization.name == organization_name.strip()))
           ).scalar_one_or_none()
    if org is None:
        raise InvalidRequest(f"No organization named {organization_name!r}.")
    row = await session.get(CreditAllocation, org.id)
    previous = row.monthly_credits if row is not None else DEFAULT_MONTHLY_CREDITS
    if row is None:
        session.add(CreditAllocation(organization_id=org.id, monthly_credits=monthly_credits))
    else:
        row.monthly_credits = monthly_credits
    await session.flush()
    return previous


# --- internals ----------------------------------------------------------------------------


def _check_choice(name: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise InvalidRequest(f"{name} must be one of {', '.join(choices)}.",
                             details=[{"path": name, "message": f"must be one of {', '.join(choices)}"}])


def _not_found(agent_id: str) -> AgentNotFound:
    return AgentNotFound(f"Agent {agent_id} not found.")


def _owner(principal: Principal) -> dict[str, str]:
    return {"organization_id": principal.organization_id, "env": principal.env}


def _scope(principal: Principal) -> tuple[Any, ...]:
    return Agent.organization_id == principal.organization_id, Agent.env == principal.env


def _ledger(principal: Principal) -> tuple[Any, ...]:
    return CreditEntry.organization_id == principal.organization_id, CreditEntry.env == principal.env


def _definition(row: Agent) -> dict[str, Any]:
    return {name: getattr(row, name) for name in DEFINITION_FIELDS}


async def _insert(session: AsyncSession, principal: Principal, definition: Mapping[str, Any], *, type: str,
                  source_id: str | None) -> AgentView:
    now = clock.now()
    row = Agent(id=new_id("agent"), organization_id=principal.organization_id, env=principal.env, type=type,
                status="draft", source_id=source_id, created_at=now, updated_at=now,
                **{**{"description": "", "conditions": [], "steps": [], "conflict_behavior": "additive",
                      "client_scope": "all"}, **definition})
    session.add(row)
    await _audit(session, principal, row.id, "agent.created", type=type, source_id=source_id)
    await session.flush()
    return _view(row)


async def _audit(session: AsyncSession, principal: Principal, agent_id: str, event: str, *,
                 decision: str | None = None, **data: Any) -> None:
    """An audit event about an agent, in the change's own transaction (ids and field names, never content)."""
    await audit_service.record(session, organization_id=principal.organization_id, subject_type="agent",
                               subject_id=agent_id, type=event, actor=principal.actor, decision=decision,
                               data={**data, "mode": principal.env})


async def _find(session: AsyncSession, principal: Principal, agent_id: str) -> AgentView:
    if agent_id in system_agents.BY_ID:
        statuses = await _system_statuses(session, principal)
        return _system_view(system_agents.BY_ID[agent_id], statuses.get(agent_id, "active"))
    return _view(await get_owned(session, Agent, agent_id, _not_found(agent_id), **_owner(principal)))


async def _check_limit(session: AsyncSession, principal: Principal, limit: int) -> None:
    active = (await session.execute(select(func.count()).select_from(Agent).where(
        *_scope(principal), Agent.status == "active"))).scalar_one()
    if active >= limit:
        raise AgentLimitReached(f"Your organization has {active} active agents, its limit; pause one before "
                                "activating another.")


async def _system_statuses(session: AsyncSession, principal: Principal) -> dict[str, str]:
    rows = await session.execute(select(AgentStatus.agent_id, AgentStatus.status).where(
        AgentStatus.organization_id == principal.organization_id, AgentStatus.env == principal.env))
    return {agent_id: status for agent_id, status in rows}


async def _set_system_status(session: AsyncSession, principal: Principal, agent_id: str, body: Any) -> AgentView:
    if not (isinstance(body, Mapping) and set(body) == {"status"} and body["status"] in ("paused", "active")):
        raise Forbidden("System agents cannot be changed; clone one (POST /api/agents/{id}/clone) and change "
                        'the clone, or send only {"status": "paused"} or {"status": "active"}.')
    row = (await session.execute(select(AgentStatus).where(
        AgentStatus.organization_id == principal.organization_id, AgentStatus.env == principal.env,
        AgentStatus.agent_id == agent_id).with_for_update())).scalar_one_or_none()
    if row is None:
        session.add(AgentStatus(id=new_id("ags"), organization_id=principal.organization_id, env=principal.env,
                                agent_id=agent_id, status=body["status"]))
    else:
        row.status = body["status"]
        row.updated_at = clock.now()
    await _audit(session, principal, agent_id, "agent.status_changed", decision=body["status"])
    await session.flush()
    return await get_agent(session, principal, agent_id)


async def _credits_by_agent(session: AsyncSession, principal: Principal, start: datetime,
                            agent_id: str | None = None) -> dict[str, int]:
    query = (select(CreditEntry.agent_id, func.sum(CreditEntry.credits))
             .where(*_ledger(principal), CreditEntry.charged_at >= start, CreditEntry.charged_at < _next_month(start))
             .group_by(CreditEntry.agent_id))
    if agent_id is not None:
        query = query.where(CreditEntry.agent_id == agent_id)
    return {agent: int(used) for agent, used in await session.execute(query)}


async def _allocation(session: AsyncSession, organization_id: str) -> int:
    row = await session.get(CreditAllocation, organization_id)
    return row.monthly_credits if row is not None else DEFAULT_MONTHLY_CREDITS


def _view(row: Agent) -> AgentView:
    return AgentView(id=row.id, org_id=row.organization_id, type=row.type, status=row.status,
                     created_at=row.created_at, updated_at=row.updated_at, **_definition(row))


def _system_view(agent: Mapping[str, Any], status: str) -> AgentView:
    return AgentView(created_at=None, updated_at=None, **{**agent, "status": status})


def _with_stats(view: AgentView, runs: AgentStats | None, credits: int) -> AgentView:
    stats = replace(runs or AgentStats(), credits_used_this_month=credits)
    return replace(view, stats=stats)


def _template_summary(template: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "category", "name", "description", "version", "trigger", "conditions", "steps",
            "conflict_behavior", "client_scope")
    return {key: template[key] for key in keys}


def _month_start(at: datetime) -> datetime:
    return clock.as_utc(at).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


def _previous_month(start: datetime) -> datetime:
    return start.replace(year=start.year - 1, month=12) if start.month == 1 else start.replace(month=start.month - 1)


# --- events -------------------------------------------------------------------------------

from errand.automations import bus  # noqa: E402 - this section's own import, kept with it
from errand.automations.schemas import Accepted  # noqa: E402


async def ingest_event(session: AsyncSession, principal: Principal, body: Any) -> Accepted:
    """Take a product's event onto the bus (``POST /api/events/ingest``) in the caller's
    organization and mode; matching runs later, on the runner (:mod:`errand.automations.bus`).

    ``body`` is the envelope ``{id?, event_type, source_product, client_id?, payload, metadata?}``
    (RESOLUTIONS.md "Automations dialect"); any key of the organization may send it. Raises
    InvalidRequest (``invalid_request``) naming each bad field: an unknown field, a payload that is
    no object or over 64 KiB, ``source_product`` ``errand`` (reserved for Errand's own events)."""
    envelope = bus.parse_envelope(body)
    return await bus.store(session, organization_id=principal.organization_id, env=principal.env, envelope=envelope)
