"""Running an execution step by step: ``errand.automations.run_execution``.

The runner first *claims* the execution in a short unit of work (row locked; status ``pending``
or ``running``; not waiting for a ``wait`` to be over; no live lease): ``running``, ``started_at``
and a lease of :data:`LEASE` that another runner respects (a crashed process's lease runs out and
:mod:`errand.automations.tasks`'s recovery sweep takes the execution over). Then, for each step
from ``position``, it re-reads the execution (a cancelled or otherwise ended one stops the runner)
and runs the step. A step's *receipt* (:class:`~errand.models.ExecutionStep`) is written in the
same transaction that moves ``position`` on, by a conditional UPDATE (``status = running AND
position = <this step>``): so a completed step is never run again, two runners never both move
one on, and a status set meanwhile (cancelled) is never overwritten.

Steps (RESOLUTIONS.md "Automations dialect"):

- ``ai_reason``: needs ``credits_remaining`` ≥ its tier's cost (else the execution fails with
  ``credit_insufficient``; earlier steps stay charged), renders the prompt, asks the LLM outside
  any transaction, then writes the receipt (output, ``credits_used``), the one ledger charge and
  the move in one unit of work. An LLM error fails the execution with its code
  (``llm_not_configured``, ``llm_failed``).
- ``product_action``: renders string params, runs the operation
  (:func:`errand.automations.actions.run`, idempotent per execution and step); its DomainError
  fails the step and the execution with the error's code.
- ``notification``: renders subject, body and recipients, and queues the messages
  (:func:`errand.notify.service.queue`) in the unit of work of the receipt and the move; its
  DomainError (``recipient_unresolved``, ``invalid_recipient``) fails the execution with that code.
- ``approval_gate``: asks for an approval (subject ``execution``, scenario ``automation``: every
  admin key of the organization and mode sees it, amount 0, deadline ``timeout_minutes``); the
  receipt waits (``waiting_approval``) and so does the execution, its lease released. What a
  decision does is :mod:`errand.automations.gates`.
- ``branch``: its CEL condition over ``event_payload`` and ``steps`` with the guard's budget
  (:func:`errand.guard.service.evaluate_with`); goes to ``if_true``/``if_false`` (a later step,
  the steps between skipped), ``end`` (the rest skipped, the execution completed) or, absent, the
  next step. Output ``{"result": bool, "next": step id | "end"}``. A condition that cannot be
  evaluated (a missing key, a type mismatch) fails the execution with ``condition_error``.
- ``wait``: the receipt waits (``waiting``, output ``{"resume_at"}``), ``resume_at`` is set and
  the lease released; the sweep ``errand.automations.resume_due`` sends the execution back to
  the runner once due, which completes the receipt and moves on. All of it is in the database,
  so a wait survives restarts.

Templates: :mod:`errand.automations.rendering` (a missing name fails the execution with
``template_error``, naming the field and the name). Every step runs inside
:func:`errand.outbox.service.acting_for`, so each event of Errand's own it causes (a booking, an
approval requested by a gate, the execution's own end) carries the loop guard and triggers no agent.

The end: ``completed`` (``completed_at``) with Errand's own event ``execution.completed``, or
``failed`` with ``reason`` and ``error`` and ``execution.failed`` (payload: ``execution_id``,
``agent_id``, ``status``, ``reason``; never content). An unexpected error in a step fails the
execution with ``step_failed`` and a generic message (the log has ids and the error's class only);
a database that cannot be reached (or busy) is raised instead, so the task is retried and the lease
runs out for the recovery sweep. Any other DomainError of a step's callee — an LLM or provider that is
unavailable included — fails the execution with its code.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.automations import rendering
from errand.automations.schemas import CREDITS_BY_TIER, END, RUN_EXECUTION
from errand.guard import service as guard_service
from errand.guard.approvals import AUTOMATION_SCENARIO
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import DatabaseBusy, DatabaseUnavailable, DomainError
from errand.kit.ids import new_id
from errand.kit.logging import get_logger
from errand.models import AutomationEvent, Execution, ExecutionStep
from errand.outbox import service as outbox_service

log = get_logger("errand.automations")

LEASE = timedelta(minutes=5)
ACTIVE = ("pending", "running", "waiting_approval")
TERMINAL = ("completed", "failed", "cancelled")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# The database failing is the runner's to retry (the task again, or the recovery sweep once the lease
# runs out); any other error of a step's callee (an LLM or provider unavailable, a policy) fails it.
_DATABASE = (DatabaseUnavailable, DatabaseBusy)


class Lost(Exception):
    """The execution moved under the runner (cancelled, ended, or another runner took the step)."""


@dataclass
class State:
    """An execution as a step sees it: the row, its event and its receipts by step id."""

    execution: Execution
    event: AutomationEvent
    receipts: dict[str, ExecutionStep]

    @property
    def steps(self) -> list[dict[str, Any]]:
        return list((self.execution.definition or {}).get("steps") or [])

    def names(self) -> dict[str, Any]:
        """What templates see (:func:`errand.automations.rendering.context`)."""
        event = self.event
        return rendering.context(
            event_payload=event.payload or {},
            event={"id": event.id, "event_key": event.event_key, "event_type": event.event_type,
                   "source_product": event.source_product, "client_id": event.client_id,
                   "metadata": event.event_metadata or {}, "received_at": clock.iso(event.received_at)},
            steps=steps_view(self.receipts.values()))


def steps_view(receipts: Any) -> dict[str, Any]:
    """``{step id: {"output": …, "status": …}}``: what templates and branch conditions see."""
    return {r.step_id: {"output": r.output, "status": r.status} for r in receipts}


def seconds(duration: str) -> int:
    """A wait's ``duration`` (``90s``, ``30m``, ``2h``, ``1d``) in seconds."""
    return int(duration[:-1]) * _UNIT_SECONDS[duration[-1]]


# --- units of work --------------------------------------------------------------------------


async def claim(core: Core, execution_id: str) -> bool:
    """Take the execution for this runner (see the module docstring); False when it is not to run now."""
    now = clock.now()
    async with core.db.unit_of_work() as session:
        row = (await session.execute(select(Execution).where(Execution.id == execution_id)
                                     .with_for_update())).scalar_one_or_none()
        if row is None or row.status not in ("pending", "running"):
            return False
        if row.resume_at is not None and clock.as_utc(row.resume_at) > now:
            return False
        if row.lease_until is not None and clock.as_utc(row.lease_until) > now:
            return False
        row.status = "running"
        row.started_at = row.started_at or now
        row.lease_until = now + LEASE
        row.updated_at = now
    return True


async def load(core: Core, execution_id: str) -> State | None:
    async with core.db.unit_of_work(read_only=True) as session:
        execution = await session.get(Execution, execution_id)
        if execution is None:
            return None
        event = await session.get(AutomationEvent, execution.event_id)
        receipts = (await session.execute(select(ExecutionStep).where(ExecutionStep.execution_id == execution_id)
                                          .order_by(ExecutionStep.position))).scalars().all()
        assert event is not None  # an execution's event is never deleted (a foreign key)
        return State(execution=execution, event=event, receipts={r.step_id: r for r in receipts})


async def move(session: AsyncSession, execution_id: str, position: int, *, to: int, hold: bool = True,
               **values: Any) -> None:
    """Move the execution from step ``position`` to ``to`` if it is still running there (extending
    the lease, or releasing it when not ``hold``); Lost otherwise."""
    now = clock.now()
    result = await session.execute(
        update(Execution).where(Execution.id == execution_id, Execution.status == "running",
                                Execution.position == position)
        .values(position=to, lease_until=now + LEASE if hold else None, updated_at=now, **values)
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise Lost(execution_id)


async def receipt(session: AsyncSession, execution_id: str, step: Mapping[str, Any], position: int, status: str, *,
                  output: Any = None, error: str | None = None, credits: int = 0,
                  started: Any = None) -> ExecutionStep:
    """Write (or complete) the receipt of ``step``."""
    now = clock.now()
    row = (await session.execute(select(ExecutionStep).where(
        ExecutionStep.execution_id == execution_id, ExecutionStep.step_id == step["id"]))).scalar_one_or_none()
    if row is None:
        row = ExecutionStep(id=new_id("stp"), execution_id=execution_id, step_id=step["id"], step_type=step["type"],
                            position=position, started_at=started or now)
        session.add(row)
    row.status = status
    row.output = output
    row.error = error
    row.credits_used = credits
    if status in ("completed", "failed", "skipped"):
        row.completed_at = now
        row.duration_ms = max(int((now - clock.as_utc(row.started_at)).total_seconds() * 1000), 0)
    await session.flush()
    return row


async def skip(session: AsyncSession, execution_id: str, steps: Sequence[Mapping[str, Any]], start: int,
               stop: int | None = None) -> None:
    """Skipped receipts for ``steps[start:stop]`` that have none."""
    for position in range(start, len(steps) if stop is None else stop):
        existing = (await session.execute(select(ExecutionStep.id).where(
            ExecutionStep.execution_id == execution_id, ExecutionStep.step_id == steps[position]["id"]))).first()
        if existing is None:
            await receipt(session, execution_id, steps[position], position, "skipped")


async def end(session: AsyncSession, execution: Execution, status: str, *, reason: str | None = None,
              error: str | None = None, from_statuses: Sequence[str] = ACTIVE) -> bool:
    """End the execution as ``status`` unless it already ended (a conditional UPDATE); records
    ``execution.completed`` / ``execution.failed`` when it changed it. Returns whether it did."""
    now = clock.now()
    result = await session.execute(
        update(Execution).where(Execution.id == execution.id, Execution.status.in_(from_statuses))
        .values(status=status, reason=reason, error=error, completed_at=now, lease_until=None, resume_at=None,
                updated_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return False
    if status in ("completed", "failed"):
        with outbox_service.acting_for(execution.id):
            await outbox_service.record(
                session, organization_id=execution.organization_id, env=execution.env,
                event_type=f"execution.{status}", subject_type="execution", subject_id=execution.id,
                payload={"execution_id": execution.id, "agent_id": execution.agent_id, "status": status,
                         "reason": reason})
    return True


async def fail(core: Core, state: State, step: Mapping[str, Any] | None, position: int, reason: str,
               error: str) -> None:
    """Fail the step (its receipt) and the execution with ``reason``; the steps after it are skipped."""
    async with core.db.unit_of_work() as session:
        if not await end(session, state.execution, "failed", reason=reason, error=error, from_statuses=("running",)):
            return
        if step is not None:
            await receipt(session, state.execution.id, step, position, "failed", error=error)
            await skip(session, state.execution.id, state.steps, position + 1)


# --- the steps ------------------------------------------------------------------------------

StepRunner = Callable[[Core, State, dict[str, Any], int], Awaitable[bool]]


async def ai_reason(core: Core, state: State, step: dict[str, Any], position: int) -> bool:
    from errand.automations import service as automations_service  # jsonschema: not at the core's start

    execution = state.execution
    cost = CREDITS_BY_TIER[step["model"]]
    async with core.db.unit_of_work(read_only=True) as session:
        remaining = await automations_service.credits_remaining(session, execution.organization_id, execution.env)
    if remaining < cost:
        await fail(core, state, step, position, "credit_insufficient",
                   f"Step {step['id']} needs {cost} credits ({step['model']}); {remaining} remain this month.")
        return False
    prompt = await rendering.render(step["prompt"], state.names(), field=f"steps[{position}].prompt")
    from errand.llm import service as llm_service  # built beside the engine

    started = clock.now()
    try:
        reasoned = await llm_service.reason(core.settings, tier=step["model"], prompt=prompt,
                                            output_schema=step.get("output_schema") or {"type": "object"})
    except _DATABASE:
        raise
    except DomainError as exc:
        await fail(core, state, step, position, exc.code, str(exc)[:500])
        return False
    async with core.db.unit_of_work() as session:
        await move(session, execution.id, position, to=position + 1)
        await receipt(session, execution.id, step, position, "completed", output=reasoned.output, credits=cost,
                      started=started)
        await automations_service.charge_credits(
            session, organization_id=execution.organization_id, env=execution.env, agent_id=execution.agent_id,
            credits=cost, model=step["model"], execution_id=execution.id, step_id=step["id"])
    return True


async def product_action(core: Core, state: State, step: dict[str, Any], position: int) -> bool:
    execution = state.execution
    params = await rendering.render_value(step.get("params") or {}, state.names(), field=f"steps[{position}].params")
    from errand.automations import actions  # built beside the engine

    started = clock.now()
    try:
        output = await actions.run(core, organization_id=execution.organization_id, env=execution.env,
                                   agent_id=execution.agent_id, execution_id=execution.id, step_id=step["id"],
                                   operation=step["operation"], params=params)
    except _DATABASE:
        raise
    except DomainError as exc:
        await fail(core, state, step, position, exc.code, str(exc)[:500])
        return False
    async with core.db.unit_of_work() as session:
        await move(session, execution.id, position, to=position + 1)
        await receipt(session, execution.id, step, position, "completed", output=output, started=started)
    return True


async def notification(core: Core, state: State, step: dict[str, Any], position: int) -> bool:
    execution = state.execution
    names = state.names()
    where = f"steps[{position}]"
    subject = await rendering.render(step["subject"], names, field=f"{where}.subject") if step.get("subject") \
        else None
    body = await rendering.render(step["body"], names, field=f"{where}.body")
    recipients = [await rendering.render(r, names, field=f"{where}.recipients[{i}]")
                  for i, r in enumerate(step["recipients"])]
    from errand.notify import service as notify_service  # built beside the engine

    try:
        async with core.db.unit_of_work() as session:
            await move(session, execution.id, position, to=position + 1)
            ids = await notify_service.queue(
                session, organization_id=execution.organization_id, env=execution.env, execution_id=execution.id,
                step_id=step["id"], channel=step["channel"], recipients=recipients, subject=subject, body=body,
                event_payload=state.event.payload or {}, settings=core.settings)
            await receipt(session, execution.id, step, position, "completed", output={"notification_ids": list(ids)})
    except _DATABASE:
        raise
    except DomainError as exc:
        await fail(core, state, step, position, exc.code, str(exc)[:500])
        return False
    return True


async def approval_gate(core: Core, state: State, step: dict[str, Any], position: int) -> bool:
    execution = state.execution
    message = await rendering.render(step["message"], state.names(), field=f"steps[{position}].message")
    async with core.db.unit_of_work() as session:
        now = clock.now()
        result = await session.execute(
            update(Execution).where(Execution.id == execution.id, Execution.status == "running",
                                    Execution.position == position)
            .values(status="waiting_approval", lease_until=None, updated_at=now)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise Lost(execution.id)
        approval = await guard_service.approvals.request(
            session, organization_id=execution.organization_id, env=execution.env, scenario=AUTOMATION_SCENARIO,
            subject_type="execution", subject_id=execution.id,
            action={"execution_id": execution.id, "agent_id": execution.agent_id, "step_id": step["id"],
                    "message": message},
            amount_usd=Decimal("0"), message=message, policy_id=None,
            ttl=timedelta(minutes=int(step.get("timeout_minutes") or 120)))
        await receipt(session, execution.id, step, position, "waiting_approval",
                      output={"approval_id": approval.id, "expires_at": clock.iso(approval.expires_at)})
    return False


async def branch(core: Core, state: State, step: dict[str, Any], position: int) -> bool:
    execution = state.execution
    steps = state.steps
    variables = {"event_payload": state.event.payload or {}, "steps": steps_view(state.receipts.values())}
    try:
        result = await guard_service.evaluate_with(step["condition"], variables)
    except guard_service.RuleError as exc:
        await fail(core, state, step, position, "condition_error", f"steps[{position}].condition: {exc}")
        return False
    target = step.get("if_true") if result else step.get("if_false")
    ids = [s["id"] for s in steps]
    if target == END:
        to = len(steps)
    elif target is not None and target in ids[position + 1:]:
        to = ids.index(target, position + 1)
    else:
        to = position + 1
    following = ids[to] if to < len(steps) else END
    async with core.db.unit_of_work() as session:
        await move(session, execution.id, position, to=to)
        await receipt(session, execution.id, step, position, "completed",
                      output={"result": result, "next": following})
        await skip(session, execution.id, steps, position + 1, to)
    return True


async def wait(core: Core, state: State, step: dict[str, Any], position: int) -> bool:
    execution = state.execution
    waiting = state.receipts.get(step["id"])
    now = clock.now()
    async with core.db.unit_of_work() as session:
        if waiting is None or waiting.status != "waiting":
            resume_at = now + timedelta(seconds=seconds(step["duration"]))
            await move(session, execution.id, position, to=position, hold=False, resume_at=resume_at)
            await receipt(session, execution.id, step, position, "waiting",
                          output={"resume_at": clock.iso(resume_at)})
            return False
        resume_at = execution.resume_at
        if resume_at is not None and clock.as_utc(resume_at) > now:  # not due: let the sweep bring it back
            await move(session, execution.id, position, to=position, hold=False)
            return False
        await move(session, execution.id, position, to=position + 1, resume_at=None)
        await receipt(session, execution.id, step, position, "completed", output=waiting.output)
    return True


STEPS: dict[str, StepRunner] = {
    "ai_reason": ai_reason, "product_action": product_action, "notification": notification,
    "approval_gate": approval_gate, "branch": branch, "wait": wait,
}


# --- the task -------------------------------------------------------------------------------


async def run_execution(core: Core, execution_id: str) -> str | None:
    """The task ``errand.automations.run_execution``: claim the execution and run its steps until
    it waits or ends; returns its status then (None when it was not to run now)."""
    if not await claim(core, execution_id):
        return None
    with outbox_service.acting_for(execution_id):
        while True:
            state = await load(core, execution_id)
            if state is None or state.execution.status != "running":
                return None if state is None else state.execution.status
            if not await _step(core, state):
                final = await load(core, execution_id)
                return None if final is None else final.execution.status


async def _step(core: Core, state: State) -> bool:
    """Run the execution's current step; whether the runner goes on to the next."""
    execution, steps = state.execution, state.steps
    position = execution.position
    if position >= len(steps):
        async with core.db.unit_of_work() as session:
            await end(session, execution, "completed", from_statuses=("running",))
        return False
    step = steps[position]
    done = state.receipts.get(step["id"])
    try:
        if done is not None and done.status in ("completed", "skipped"):  # never run a step twice
            async with core.db.unit_of_work() as session:
                await move(session, execution.id, position, to=position + 1)
            return True
        return await STEPS[step["type"]](core, state, step, position)
    except Lost:
        return False
    except rendering.TemplateFailed as exc:
        await fail(core, state, step, position, "template_error", str(exc))
        return False
    except _DATABASE:
        raise
    except Exception as exc:  # noqa: BLE001 - one step's bug must not crash the runner
        log.error("execution_step_failed", execution_id=execution.id, step_id=step.get("id"),
                  error=type(exc).__name__)
        await fail(core, state, step, position, "step_failed", f"Step {step.get('id')} failed unexpectedly.")
        return False
