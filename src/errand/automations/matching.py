"""Matching an event against the agents: which run, each as a new execution.

``errand.automations.match_event`` (:func:`match_event`) takes one event, in one unit of work
with its row locked, and is idempotent: an event whose ``matched_at`` is set is left alone.
Rules (RESOLUTIONS.md "Automations dialect"); where it is silent, the choices are noted here.

Candidates: the organization's ``active`` agents in the event's mode, oldest first (then by id),
followed by the system agents (:mod:`errand.automations.system_agents`) it has not paused in
that mode, in their declared order.

An agent *applies* when, in this order:

1. its trigger's ``source_product`` and ``event_type`` equal the event's;
2. every trigger filter holds on the **payload** (``field`` a dotted path; a list is indexed by
   a number, ``items.0.sku``);
3. every condition holds on the **envelope**: ``event_type``, ``source_product``, ``client_id``,
   ``payload.<path>``, ``metadata.<path>``;
4. its ``client_scope`` takes the event's ``client_id``: ``"all"`` takes every event,
   ``{"include": [...]}`` only those whose ``client_id`` is listed (an event without one: never),
   ``{"exclude": [...]}`` all but those listed (an event without one: always).

A filter (:func:`holds`) compares case-sensitively and by JSON type: ``true`` never equals ``1``,
``"5"`` never equals ``5``, ``1`` equals ``1.0``. ``gt``/``lt`` hold only for a number;
``contains`` for a substring of a string or an item of an array; ``in``/``not_in`` test
membership in ``value``. **A missing field (or a null one) never holds, except for ``ne`` and
``not_in``**, which it satisfies (it differs from every value and is in no list) — except that
``null`` ``eq``/``in`` an explicit ``null`` holds.

Then, among the agents that apply:

- the loop guard: an event whose ``metadata.agent_triggered`` is truthy runs no agent at all;
- ``override``: when an organization's agent that applies says ``override``, no system agent
  runs for this event (they all share its event type and client, having applied to it);
- ``exclusive``: when an agent that applies says ``exclusive``, the first such agent in
  candidate order runs alone and every other one that applies is suppressed;
- each remaining agent is then checked on its own: **de-duplication** (an execution of that
  agent with the same ``event_key`` created in the last 5 minutes skips it; an execution made
  by retrying is created by the retry, never by matching, so retries are exempt) and its
  ``execution_limit`` (``max_per_hour`` and ``max_per_day`` over its executions in this
  organization and mode in the last rolling 60 minutes / 24 hours, ``cooldown_seconds`` since
  its latest). So a suppressed or skipped agent never lets another run in its place.

Each agent that runs gets an :class:`~errand.models.Execution` (``pending``; ``definition`` the
trigger, conditions, steps and name as they are now) and a call of
``errand.automations.run_execution``. An agent that applied but was suppressed or skipped is
recorded in the audit log (``execution.skipped``, subject the agent, with the event's id and the
reason: ``duplicate``, ``execution_limit``, ``cooldown``, ``overridden``, ``exclusive``); the loop
guard and an agent whose trigger does not match are logged at debug level with ids only.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from errand.audit import service as audit_service
from errand.automations import system_agents
from errand.automations.schemas import RUN_EXECUTION
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import Unavailable
from errand.kit.ids import new_id
from errand.kit.logging import get_logger
from errand.kit.tasks import enqueue
from errand.models import Agent, AgentStatus, AutomationEvent, Execution

log = get_logger("errand.automations")

DEDUP_WINDOW = timedelta(minutes=5)
_MISSING = object()


@dataclass(frozen=True)
class Candidate:
    """An agent that may run: an organization's row or a system agent, as its definition stands."""

    id: str
    system: bool
    name: str
    trigger: Mapping[str, Any] | None
    conditions: Sequence[Mapping[str, Any]]
    steps: Sequence[Mapping[str, Any]]
    conflict_behavior: str
    client_scope: Any
    execution_limit: Mapping[str, Any] | None

    def definition(self) -> dict[str, Any]:
        """What an execution keeps of it: a run never changes when the agent is edited."""
        return {"name": self.name, "trigger": self.trigger, "conditions": list(self.conditions),
                "steps": list(self.steps)}


# --- the rules ------------------------------------------------------------------------------


def lookup(data: Any, path: str) -> Any:
    """The value at dotted ``path`` inside ``data`` (objects by key, arrays by index), or
    :data:`_MISSING`."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def _is_number(value: Any) -> bool:
    """A JSON number: an int of any size, or a finite float (never ``true``)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def same(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, everything else by type and value (``true`` is not ``1``)."""
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if type(a) is not type(b) and not (isinstance(a, Mapping) and isinstance(b, Mapping)):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def holds(rule: Mapping[str, Any], data: Any) -> bool:
    """Whether one filter ``{field, operator, value}`` holds on ``data`` (see the module docstring)."""
    op, expected = rule["operator"], rule.get("value")
    actual = lookup(data, rule["field"])
    if actual is _MISSING or (actual is None and not (op in ("eq", "in") and (
            expected is None or (isinstance(expected, list) and None in expected)))):
        return op in ("ne", "not_in")
    if op == "eq":
        return same(actual, expected)
    if op == "ne":
        return not same(actual, expected)
    if op in ("gt", "lt"):
        if not (_is_number(actual) and _is_number(expected)):
            return False
        return bool(actual > expected) if op == "gt" else bool(actual < expected)
    if op == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        if isinstance(actual, list):
            return any(same(item, expected) for item in actual)
        return False
    if op in ("in", "not_in"):
        found = isinstance(expected, list) and any(same(actual, item) for item in expected)
        return found if op == "in" else not found
    return False


def scope_takes(scope: Any, client_id: str | None) -> bool:
    """Whether ``client_scope`` takes an event of ``client_id`` (see the module docstring)."""
    if isinstance(scope, Mapping) and "include" in scope:
        return client_id is not None and client_id in scope["include"]
    if isinstance(scope, Mapping) and "exclude" in scope:
        return client_id is None or client_id not in scope["exclude"]
    return scope == "all"


def envelope(event: AutomationEvent) -> dict[str, Any]:
    """What conditions see: the event's envelope with its payload and metadata."""
    return {"event_type": event.event_type, "source_product": event.source_product, "client_id": event.client_id,
            "payload": event.payload or {}, "metadata": event.event_metadata or {}}


def triggered_by(agent: Candidate, event: AutomationEvent) -> bool:
    trigger = agent.trigger or {}
    return trigger.get("source_product") == event.source_product and trigger.get("event_type") == event.event_type


def applies(agent: Candidate, event: AutomationEvent) -> bool:
    """Steps 1–4 of the module docstring."""
    if not triggered_by(agent, event):
        return False
    trigger = agent.trigger or {}
    if not all(holds(rule, event.payload or {}) for rule in trigger.get("filters") or []):
        return False
    whole = envelope(event)
    if not all(holds(rule, whole) for rule in agent.conditions or []):
        return False
    return scope_takes(agent.client_scope, event.client_id)


def resolve_conflicts(applying: Sequence[Candidate]) -> tuple[list[Candidate], dict[str, str]]:
    """Who of ``applying`` (in candidate order) runs, and why each other one does not."""
    suppressed: dict[str, str] = {}
    running = list(applying)
    if any(a.conflict_behavior == "override" and not a.system for a in running):
        suppressed.update({a.id: "overridden" for a in running if a.system})
        running = [a for a in running if not a.system]
    exclusive = next((a for a in running if a.conflict_behavior == "exclusive"), None)
    if exclusive is not None:
        suppressed.update({a.id: "exclusive" for a in running if a is not exclusive})
        running = [exclusive]
    return running, suppressed


def is_loop(event: AutomationEvent) -> bool:
    """The loop guard: an event an agent caused (``metadata.agent_triggered`` truthy)."""
    return bool((event.event_metadata or {}).get("agent_triggered"))


# --- candidates and limits ------------------------------------------------------------------


async def candidates(session: AsyncSession, organization_id: str, env: str) -> list[Candidate]:
    """The organization's active agents in ``env``, oldest first, then the system agents it has
    not paused there."""
    rows = (await session.execute(select(Agent).where(
        Agent.organization_id == organization_id, Agent.env == env, Agent.status == "active")
        .order_by(Agent.created_at, Agent.id))).scalars().all()
    out = [Candidate(id=r.id, system=False, name=r.name, trigger=r.trigger, conditions=r.conditions or [],
                     steps=r.steps or [], conflict_behavior=r.conflict_behavior, client_scope=r.client_scope,
                     execution_limit=r.execution_limit) for r in rows]
    paused = set((await session.execute(select(AgentStatus.agent_id).where(
        AgentStatus.organization_id == organization_id, AgentStatus.env == env,
        AgentStatus.status == "paused"))).scalars())
    out += [Candidate(id=a["id"], system=True, name=a["name"], trigger=a["trigger"], conditions=a["conditions"],
                      steps=a["steps"], conflict_behavior=a["conflict_behavior"], client_scope=a["client_scope"],
                      execution_limit=a["execution_limit"])
            for a in system_agents.SYSTEM_AGENTS if a["id"] not in paused]
    return out


async def _count_since(session: AsyncSession, event: AutomationEvent, agent_id: str, since: Any) -> int:
    return int((await session.execute(select(func.count()).select_from(Execution).where(
        Execution.organization_id == event.organization_id, Execution.env == event.env,
        Execution.agent_id == agent_id, Execution.created_at >= since))).scalar_one())


async def why_not(session: AsyncSession, event: AutomationEvent, agent: Candidate) -> str | None:
    """Why ``agent`` may not run for ``event`` now (``duplicate``, ``execution_limit``,
    ``cooldown``), or None."""
    now = clock.now()
    duplicate = (await session.execute(select(Execution.id).where(
        Execution.organization_id == event.organization_id, Execution.env == event.env,
        Execution.agent_id == agent.id, Execution.event_key == event.event_key,
        Execution.created_at >= now - DEDUP_WINDOW).limit(1))).first()
    if duplicate is not None:
        return "duplicate"
    limit = agent.execution_limit or {}
    if limit.get("max_per_hour") is not None and await _count_since(
            session, event, agent.id, now - timedelta(hours=1)) >= limit["max_per_hour"]:
        return "execution_limit"
    if limit.get("max_per_day") is not None and await _count_since(
            session, event, agent.id, now - timedelta(days=1)) >= limit["max_per_day"]:
        return "execution_limit"
    if limit.get("cooldown_seconds"):
        latest = (await session.execute(select(func.max(Execution.created_at)).where(
            Execution.organization_id == event.organization_id, Execution.env == event.env,
            Execution.agent_id == agent.id))).scalar_one_or_none()
        if latest is not None and clock.as_utc(latest) > now - timedelta(seconds=limit["cooldown_seconds"]):
            return "cooldown"
    return None


# --- the task -------------------------------------------------------------------------------


async def match(session: AsyncSession, event_id: str) -> list[str]:
    """Match event ``event_id`` in ``session`` (its row locked) and create an execution for each
    agent that runs; returns their ids. Nothing for an unknown or already matched event."""
    event = (await session.execute(select(AutomationEvent).where(AutomationEvent.id == event_id)
                                   .with_for_update())).scalar_one_or_none()
    if event is None or event.matched_at is not None:
        return []
    await session.execute(update(AutomationEvent).where(AutomationEvent.id == event_id)
                          .values(matched_at=clock.now()).execution_options(synchronize_session=False))
    if is_loop(event):
        log.debug("automation_event_loop_guard", event_id=event.id)
        return []
    agents = await candidates(session, event.organization_id, event.env)
    applying = [a for a in agents if applies(a, event)]
    if not applying:
        log.debug("automation_event_unmatched", event_id=event.id)
        return []
    running, suppressed = resolve_conflicts(applying)
    if any(not a.system for a in running):  # serialise matching per agent (PostgreSQL: its row)
        await session.execute(select(Agent.id).where(Agent.id.in_([a.id for a in running if not a.system]))
                              .with_for_update())
    started: list[str] = []
    for agent in running:
        reason = await why_not(session, event, agent)
        if reason is not None:
            suppressed[agent.id] = reason
            continue
        execution_id = new_id("exec")
        session.add(Execution(id=execution_id, organization_id=event.organization_id, env=event.env,
                              agent_id=agent.id, event_id=event.id, event_key=event.event_key,
                              definition=agent.definition(), status="pending", position=0))
        await session.flush()
        enqueue(session, RUN_EXECUTION, execution_id=execution_id)
        started.append(execution_id)
    for agent_id, reason in suppressed.items():
        await audit_service.record(session, organization_id=event.organization_id, subject_type="agent",
                                   subject_id=agent_id, type="execution.skipped", actor="system", reason=reason,
                                   data={"event_id": event.id, "mode": event.env,
                                         "system": agent_id in system_agents.BY_ID})
    return started


async def match_event(core: Core, event_id: str) -> list[str]:
    """The task ``errand.automations.match_event``: :func:`match` in one unit of work.

    The database failing is raised (the task is retried, and the recovery sweep finds the event
    again); any other error is a bug or an event no rule foresaw, and must not come back every
    sweep forever: it is logged (ids and the error's class) and the event is marked matched,
    with no execution."""
    try:
        async with core.db.unit_of_work() as session:
            return await match(session, event_id)
    except (Unavailable, DBAPIError):
        raise
    except Exception as exc:  # noqa: BLE001 - one poisoned event must not stop the bus
        log.error("automation_event_match_failed", event_id=event_id, error=type(exc).__name__)
        async with core.db.unit_of_work() as session:
            await session.execute(update(AutomationEvent).where(AutomationEvent.id == event_id,
                                                                AutomationEvent.matched_at.is_(None))
                                  .values(matched_at=clock.now()).execution_options(synchronize_session=False))
        return []

