"""Executions as their organization sees and steers them: list, detail, cancel, retry, and the
figures agents' ``stats`` are made of.

Every read is filtered by the caller's organization and mode (its key's ``env``): another
organization's execution is not found, as a missing one is. Credits shown here (an execution's
``credits_used``, a step's) are sums over the one ledger (``credit_entries``), so they agree with
``/api/credits`` and agents' stats by construction.

Rules: spec/automations-api.txt ("Executions") and RESOLUTIONS.md ("Automations dialect"):
cancel works on pending, running and waiting_approval (pending steps are skipped, an open approval
gate is denied); retry works on failed and cancelled and makes a new execution with ``retry_of``,
from the beginning, with the original trigger event. Where they are silent: a retry runs the
agent's current definition (the one an operator just fixed); an execution of an agent deleted
since cannot be retried (404 ``agent_not_found``: deleting an agent stops what it does); a retry whose first AI step the organization cannot pay is refused with
402 ``credit_insufficient`` before anything is written.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.audit import service as audit_service
from errand.automations import runner, system_agents
from errand.automations.errors import AgentNotFound, CreditInsufficient, ExecutionNotFound
from errand.automations.schemas import (
    ACTIVE_EXECUTION_STATUSES, CREDITS_BY_TIER, EXECUTION_STATUSES, EXECUTIONS_PAGE_MAX,
    RETRYABLE_EXECUTION_STATUSES, RUN_EXECUTION, AgentStats, ExecutionPage, ExecutionView, StepTrace,
)
from errand.guard import service as guard_service
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import clock, pagination
from errand.kit.errors import InvalidRequest, InvalidState
from errand.kit.ids import new_id
from errand.kit.tasks import enqueue
from errand.models import Agent, AutomationEvent, CreditEntry, Execution, ExecutionStep, get_owned

CANCELLED_NOTE = "The execution was cancelled."
STEERING = "Cancelling or retrying executions"


def _not_found(execution_id: str) -> ExecutionNotFound:
    return ExecutionNotFound(f"Execution {execution_id} not found.")


def _scope(principal: Principal) -> tuple[Any, ...]:
    return Execution.organization_id == principal.organization_id, Execution.env == principal.env


async def list_executions(session: AsyncSession, principal: Principal, *, agent_id: str | None = None,
                          status: str | None = None, since: datetime | None = None, until: datetime | None = None,
                          limit: int = 50, cursor: str | None = None) -> ExecutionPage:
    """The caller's executions, newest first, ``limit`` (1–200) per page; ``total`` counts every
    execution the filters match. ``since``/``until`` bound ``created_at`` (inclusive, exclusive).

    InvalidRequest for an unknown ``status``, a ``limit`` out of range, ``since`` after ``until``
    or a cursor this API did not hand out."""
    if status is not None and status not in EXECUTION_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(EXECUTION_STATUSES)}.",
                             details=[{"path": "status", "message": f"must be one of {', '.join(EXECUTION_STATUSES)}"}])
    if not 1 <= limit <= EXECUTIONS_PAGE_MAX:
        raise InvalidRequest(f"limit must be 1 to {EXECUTIONS_PAGE_MAX}.",
                             details=[{"path": "limit", "message": f"must be 1 to {EXECUTIONS_PAGE_MAX}"}])
    if since is not None and until is not None and since > until:
        raise InvalidRequest("from must not be after to.", details=[{"path": "from", "message": "is after to"}])
    filters: list[Any] = list(_scope(principal))
    if agent_id is not None:
        filters.append(Execution.agent_id == agent_id)
    if status is not None:
        filters.append(Execution.status == status)
    if since is not None:
        filters.append(Execution.created_at >= since)
    if until is not None:
        filters.append(Execution.created_at < until)
    total = (await session.execute(select(func.count()).select_from(Execution).where(*filters))).scalar_one()
    query = select(Execution).where(*filters)
    if cursor is not None:
        at, last_id = pagination.decode(cursor, _parse_cursor)
        query = query.where(or_(Execution.created_at < at, and_(Execution.created_at == at, Execution.id < last_id)))
    rows = list((await session.execute(
        query.order_by(Execution.created_at.desc(), Execution.id.desc()).limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    credits = await _credits_by_execution(session, [row.id for row in rows])
    next_cursor = pagination.encode([clock.iso(rows[-1].created_at), rows[-1].id]) if more else None
    return ExecutionPage(executions=[_view(row, credits.get(row.id, 0)) for row in rows], total=total,
                         next_cursor=next_cursor)


def _parse_cursor(key: list[Any]) -> tuple[datetime, str]:
    at, last_id = key
    if not isinstance(at, str) or not isinstance(last_id, str):
        raise TypeError("a cursor is [created_at, id]")
    return clock.as_utc(datetime.fromisoformat(at)), last_id


async def get_execution(session: AsyncSession, principal: Principal, execution_id: str) -> ExecutionView:
    """One execution with its trigger event and its step trace (in the order the steps ran).
    ExecutionNotFound outside the caller's organization and mode."""
    row = await get_owned(session, Execution, execution_id, _not_found(execution_id),
                          organization_id=principal.organization_id, env=principal.env)
    return await _detail(session, row)


async def cancel_execution(session: AsyncSession, principal: Principal, execution_id: str) -> ExecutionView:
    """Cancel a pending, running or waiting execution: steps not yet done are recorded as skipped,
    an open approval gate is denied (by the caller, noted as a cancellation), and the runner stops
    before its next step. Returns the execution, ``cancelled``.

    Forbidden without an admin key; ExecutionNotFound; InvalidState (409) in any other status."""
    identity_service.require_admin(principal, STEERING)
    row = await get_owned(session, Execution, execution_id, _not_found(execution_id), lock=True,
                          organization_id=principal.organization_id, env=principal.env)
    if row.status not in ACTIVE_EXECUTION_STATUSES:
        raise InvalidState(f"Execution {execution_id} is {row.status}; only pending, running or waiting_approval "
                           "executions can be cancelled.")
    if not await runner.end(session, row, "cancelled", reason="cancelled", error="Cancelled by " + principal.actor):
        raise InvalidState(f"Execution {execution_id} ended meanwhile.")
    gate = await guard_service.approvals.pending_for(session, principal.organization_id, "execution", row.id)
    if gate is not None:
        await guard_service.approvals.transition(session, gate, "denied", decided_by=principal.actor,
                                                 note=CANCELLED_NOTE)
    await skip_remaining(session, row)
    await audit_service.record(session, organization_id=principal.organization_id, subject_type="execution",
                               subject_id=row.id, type="execution.cancelled", actor=principal.actor,
                               decision="cancelled", data={"agent_id": row.agent_id, "mode": row.env})
    await session.flush()
    await session.refresh(row)
    return await _detail(session, row)


async def skip_remaining(session: AsyncSession, execution: Execution) -> None:
    """Record every step of ``execution`` without a finished receipt as ``skipped`` (a step waiting
    for an approval or a wait included), in ``session``'s transaction."""
    steps = (execution.definition or {}).get("steps") or []
    waiting = (await session.execute(select(ExecutionStep).where(
        ExecutionStep.execution_id == execution.id,
        ExecutionStep.status.in_(("waiting", "waiting_approval"))))).scalars().all()
    for receipt in waiting:
        await runner.receipt(session, execution.id, {"id": receipt.step_id, "type": receipt.step_type},
                             receipt.position, "skipped")
    await runner.skip(session, execution.id, steps, 0)


async def retry_execution(session: AsyncSession, principal: Principal, execution_id: str) -> ExecutionView:
    """A new execution of the same agent for the same trigger event, from its first step, with
    ``retry_of`` naming this one; it starts once the caller's transaction commits.

    Forbidden without an admin key; ExecutionNotFound; InvalidState unless failed or cancelled;
    AgentNotFound when its agent was deleted; CreditInsufficient (402) when the organization
    cannot pay the first AI step."""
    identity_service.require_admin(principal, STEERING)
    from errand.automations import service  # the module that owns credits; imported late, it imports this one

    original = await get_owned(session, Execution, execution_id, _not_found(execution_id),
                               organization_id=principal.organization_id, env=principal.env)
    if original.status not in RETRYABLE_EXECUTION_STATUSES:
        raise InvalidState(f"Execution {execution_id} is {original.status}; only failed or cancelled executions "
                           "can be retried.")
    definition = await _current_definition(session, original)
    first_ai = next((s for s in definition.get("steps") or [] if s.get("type") == "ai_reason"), None)
    if first_ai is not None:
        cost = CREDITS_BY_TIER[first_ai["model"]]
        remaining = await service.credits_remaining(session, principal.organization_id, principal.env)
        if remaining < cost:
            raise CreditInsufficient(f"Your organization has {remaining} credits left this month; the retry's first "
                                     f"AI step ({first_ai['id']}, {first_ai['model']}) costs {cost}.")
    now = clock.now()
    retry = Execution(id=new_id("exec"), organization_id=original.organization_id, env=original.env,
                      agent_id=original.agent_id, event_id=original.event_id, event_key=original.event_key,
                      definition=definition, status="pending", retry_of=original.id, position=0,
                      created_at=now, updated_at=now)
    session.add(retry)
    await audit_service.record(session, organization_id=principal.organization_id, subject_type="execution",
                               subject_id=retry.id, type="execution.retried", actor=principal.actor,
                               data={"agent_id": original.agent_id, "retry_of": original.id, "mode": original.env})
    await session.flush()
    enqueue(session, RUN_EXECUTION, execution_id=retry.id)
    return await _detail(session, retry)


async def cancel_active_for_agent(session: AsyncSession, principal: Principal, agent_id: str) -> int:
    """Cancel every pending, running or waiting execution of ``agent_id`` in the caller's scope
    (before the agent is deleted); returns how many."""
    ids = list((await session.execute(select(Execution.id).where(
        *_scope(principal), Execution.agent_id == agent_id,
        Execution.status.in_(ACTIVE_EXECUTION_STATUSES)))).scalars())
    for execution_id in ids:
        await cancel_execution(session, principal, execution_id)
    return len(ids)


async def stats(session: AsyncSession, principal: Principal, agent_ids: list[str]) -> dict[str, AgentStats]:
    """Each agent's record over its executions in the caller's scope: runs, the share of finished
    runs (completed or failed) that completed, the mean duration of completed runs (ms, from start
    to end) and the last run's start. Credits are left at 0: the caller adds the ledger's figure."""
    if not agent_ids:
        return {}
    finished = Execution.status.in_(("completed", "failed"))
    rows = await session.execute(
        select(Execution.agent_id, func.count(), func.max(Execution.created_at),
               func.sum(_case(Execution.status == "completed")), func.sum(_case(finished)),
               func.avg(_duration_ms(session, Execution.started_at, Execution.completed_at)))
        .where(*_scope(principal), Execution.agent_id.in_(agent_ids)).group_by(Execution.agent_id))
    out: dict[str, AgentStats] = {}
    for agent_id, runs, last, completed, ended, mean in rows:
        out[agent_id] = AgentStats(
            total_runs=int(runs), success_rate=round(int(completed) / int(ended), 4) if ended else None,
            avg_duration_ms=int(round(float(mean))) if mean is not None else None,
            last_run_at=clock.as_utc(last) if isinstance(last, datetime) else _parse_time(last))
    return out


# --- internals ----------------------------------------------------------------------------


def _case(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def _duration_ms(session: AsyncSession, start: Any, end: Any) -> Any:
    """``end - start`` in milliseconds as SQL, null unless the execution completed."""
    if session.get_bind().dialect.name == "sqlite":
        span = (func.julianday(end) - func.julianday(start)) * 86_400_000.0
    else:
        span = func.extract("epoch", end - start) * 1000.0
    return case((and_(Execution.status == "completed", start.is_not(None), end.is_not(None)), span), else_=None)


def _parse_time(value: Any) -> datetime | None:
    """A ``max()`` of a timestamp column: SQLite answers text, which the column type did not read."""
    return None if value is None else clock.as_utc(datetime.fromisoformat(str(value)))


async def _current_definition(session: AsyncSession, execution: Execution) -> dict[str, Any]:
    agent_id = execution.agent_id
    if agent_id in system_agents.BY_ID:
        source: Any = system_agents.BY_ID[agent_id]
        return {key: source[key] for key in ("name", "trigger", "conditions", "steps")}
    row = (await session.execute(select(Agent).where(
        Agent.id == agent_id, Agent.organization_id == execution.organization_id,
        Agent.env == execution.env))).scalar_one_or_none()
    if row is None:
        raise AgentNotFound(f"Agent {agent_id} was deleted; its executions cannot be retried.")
    return {"name": row.name, "trigger": row.trigger, "conditions": row.conditions, "steps": row.steps}


async def _credits_by_execution(session: AsyncSession, execution_ids: list[str]) -> dict[str, int]:
    if not execution_ids:
        return {}
    rows = await session.execute(select(CreditEntry.execution_id, func.sum(CreditEntry.credits))
                                 .where(CreditEntry.execution_id.in_(execution_ids))
                                 .group_by(CreditEntry.execution_id))
    return {execution_id: int(used) for execution_id, used in rows}


def _view(row: Execution, credits: int, **detail: Any) -> ExecutionView:
    return ExecutionView(id=row.id, agent_id=row.agent_id, agent_name=(row.definition or {}).get("name"),
                         status=row.status, reason=row.reason, error=row.error, retry_of=row.retry_of,
                         credits_used=credits, created_at=row.created_at, started_at=row.started_at,
                         completed_at=row.completed_at, **detail)


async def _detail(session: AsyncSession, row: Execution) -> ExecutionView:
    event = await session.get(AutomationEvent, row.event_id)
    receipts = list((await session.execute(_trace(row.id))).scalars())
    charged = {step_id: int(used) for step_id, used in await session.execute(
        select(CreditEntry.step_id, func.sum(CreditEntry.credits)).where(CreditEntry.execution_id == row.id)
        .group_by(CreditEntry.step_id))}
    steps = [StepTrace(step_id=r.step_id, step_type=r.step_type, status=r.status, output=r.output, error=r.error,
                       credits_used=charged.get(r.step_id, 0), duration_ms=r.duration_ms, started_at=r.started_at,
                       completed_at=r.completed_at) for r in receipts]
    trigger = None if event is None else {
        "id": event.id, "event_key": event.event_key, "event_type": event.event_type, "source_product": event.source_product,
        "client_id": event.client_id, "payload": event.payload, "metadata": event.event_metadata or {},
        "received_at": clock.iso(event.received_at)}
    return _view(row, sum(charged.values()), trigger_event=trigger, steps=steps)


def _trace(execution_id: str) -> Select[tuple[ExecutionStep]]:
    return (select(ExecutionStep).where(ExecutionStep.execution_id == execution_id)
            .order_by(ExecutionStep.position, ExecutionStep.started_at))
