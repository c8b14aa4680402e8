"""Running executions: branch, wait, approval gates (approve, deny, expire), receipts that stop a
step from running twice, templates that name a missing value, credits, and the end events."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from errand.approvals import service as approvals_service
from errand.automations import bus, matching, runner
from errand.automations import tasks as automation_tasks
from errand.kit import clock
from errand.kit.db import Database
from errand.kit.errors import InvalidState
from errand.models import (
    Approval, AutomationEvent, CreditAllocation, CreditEntry, Execution, ExecutionStep, OutboxEvent,
)
from tests.service.automations.support import Sent, add_agent, admin_of, core_on, ingest

GATED = [
    {"type": "branch", "id": "is_p1", "condition": 'event_payload.priority == "p1"', "if_false": "end"},
    {"type": "wait", "id": "pause", "duration": "1h"},
    {"type": "approval_gate", "id": "ask", "message": "Escalate ticket {{ event_payload.ticket_id }}?",
     "timeout_minutes": 30},
    {"type": "branch", "id": "was_approved", "condition": 'steps.ask.output.decision == "approved"'},
]


async def start(database: Database, organization: str, steps: list[dict[str, Any]], **event: Any) -> str:
    """One active agent with ``steps``, one matching event, matched: the execution's id."""
    await add_agent(database, organization, steps=steps)
    event_id = await ingest(database, organization, **event)
    async with database.unit_of_work() as session:
        started = await matching.match(session, event_id)
    assert len(started) == 1
    return started[0]


async def execution(database: Database, execution_id: str) -> tuple[Execution, dict[str, ExecutionStep]]:
    async with database.unit_of_work(read_only=True) as session:
        row = await session.get(Execution, execution_id)
        steps = (await session.execute(select(ExecutionStep).where(ExecutionStep.execution_id == execution_id)))
        return row, {s.step_id: s for s in steps.scalars()}  # type: ignore[return-value]


async def events_of(database: Database, execution_id: str) -> list[OutboxEvent]:
    async with database.unit_of_work(read_only=True) as session:
        return list((await session.execute(select(OutboxEvent).where(
            OutboxEvent.subject_id == execution_id))).scalars())


async def make_due(database: Database, execution_id: str) -> None:
    async with database.unit_of_work() as session:
        await session.execute(update(Execution).where(Execution.id == execution_id)
                              .values(resume_at=clock.now() - timedelta(seconds=1)))


async def pending_gate(database: Database, execution_id: str) -> str:
    async with database.unit_of_work(read_only=True) as session:
        return (await session.execute(select(Approval.id).where(
            Approval.subject_id == execution_id, Approval.status == "pending"))).scalar_one()


async def test_branch_wait_and_an_approved_gate_run_to_completion(database: Database, organization: str) -> None:
    core = core_on(database)
    sent = Sent()
    database.task_sender = sent
    try:
        execution_id = await start(database, organization, GATED, payload={"ticket_id": "T-9", "priority": "p1"})
        assert sent.of(runner.RUN_EXECUTION) == [{"execution_id": execution_id}]  # matching sent it
        sent.calls.clear()
        assert await runner.run_execution(core, execution_id) == "running"  # waiting on the wait step
        row, steps = await execution(database, execution_id)
        assert row.position == 1 and row.resume_at is not None and row.lease_until is None
        assert steps["is_p1"].status == "completed" and steps["is_p1"].output == {"result": True, "next": "pause"}
        assert steps["pause"].status == "waiting" and "resume_at" in steps["pause"].output
        # Not due: the sweep leaves it alone and a stray run does nothing.
        assert execution_id not in [a["execution_id"] for a in sent.of(runner.RUN_EXECUTION)]
        await automation_tasks.resume_due(core)
        assert execution_id not in [a["execution_id"] for a in sent.of(runner.RUN_EXECUTION)]
        assert await runner.run_execution(core, execution_id) is None

        await make_due(database, execution_id)
        await automation_tasks.resume_due(core)
        assert {"execution_id": execution_id} in sent.of(runner.RUN_EXECUTION)
        assert await runner.run_execution(core, execution_id) == "waiting_approval"
        row, steps = await execution(database, execution_id)
        assert steps["pause"].status == "completed" and steps["ask"].status == "waiting_approval"
        approval_id = await pending_gate(database, execution_id)

        # Every admin key of the organization sees the gate, whatever its scenarios.
        admin = admin_of(organization)
        listed = [a for a in await approvals_service.list_approvals(core, admin, "pending")
                  if a.subject_id == execution_id]
        assert [(a.id, a.message) for a in listed] == [(approval_id, "Escalate ticket T-9?")]

        approval, status = await approvals_service.decide_approval(core, admin, approval_id, "approved", "go")
        assert approval.status == "approved" and status == "running"
        assert await runner.run_execution(core, execution_id) == "completed"
        row, steps = await execution(database, execution_id)
        assert row.status == "completed" and row.completed_at is not None and row.reason is None
        assert steps["ask"].output["decision"] == "approved" and steps["ask"].output["note"] == "go"
        assert steps["was_approved"].output == {"result": True, "next": "end"}
        events = await events_of(database, execution_id)
        assert [e.event_type for e in events] == ["execution.completed"]
        assert events[0].payload == {"execution_id": execution_id, "agent_id": row.agent_id, "status": "completed"}
        assert events[0].execution_id == execution_id  # the loop guard: no agent reacts to it

        # Running again, or deciding again, changes nothing.
        assert await runner.run_execution(core, execution_id) is None
        _, again = await execution(database, execution_id)
        assert {k: (v.status, v.completed_at) for k, v in again.items()} == {
            k: (v.status, v.completed_at) for k, v in steps.items()}
    finally:
        database.task_sender = None


async def test_a_branch_to_end_skips_the_rest(database: Database, organization: str) -> None:
    core = core_on(database)
    execution_id = await start(database, organization, GATED, payload={"ticket_id": "T-1", "priority": "p3"})
    assert await runner.run_execution(core, execution_id) == "completed"
    _, steps = await execution(database, execution_id)
    assert steps["is_p1"].output == {"result": False, "next": "end"}
    assert {k: s.status for k, s in steps.items()} == {"is_p1": "completed", "pause": "skipped", "ask": "skipped",
                                                        "was_approved": "skipped"}


async def test_a_denied_gate_cancels_the_execution(database: Database, organization: str) -> None:
    core = core_on(database)
    execution_id = await start(database, organization, GATED[2:], payload={"ticket_id": "T-2"})
    assert await runner.run_execution(core, execution_id) == "waiting_approval"
    approval_id = await pending_gate(database, execution_id)
    _, status = await approvals_service.decide_approval(core, admin_of(organization), approval_id, "denied", None)
    assert status == "cancelled"
    row, steps = await execution(database, execution_id)
    assert (row.status, row.reason) == ("cancelled", "approval_denied")
    assert steps["ask"].status == "completed" and steps["ask"].output["decision"] == "denied"
    assert steps["was_approved"].status == "skipped"
    assert await runner.run_execution(core, execution_id) is None
    with pytest.raises(InvalidState):  # a second decision is refused
        await approvals_service.decide_approval(core, admin_of(organization), approval_id, "approved", None)


async def test_an_expired_gate_fails_the_execution(database: Database, organization: str) -> None:
    core = core_on(database)
    execution_id = await start(database, organization, GATED[2:], payload={"ticket_id": "T-3"})
    assert await runner.run_execution(core, execution_id) == "waiting_approval"
    approval_id = await pending_gate(database, execution_id)
    async with database.unit_of_work() as session:
        await session.execute(update(Approval).where(Approval.id == approval_id)
                              .values(expires_at=clock.now() - timedelta(seconds=1)))
    assert await approvals_service.expire_due_approvals(core, admin_of(organization)) == 1
    row, steps = await execution(database, execution_id)
    assert (row.status, row.reason) == ("failed", "approval_expired")
    assert steps["ask"].status == "failed" and steps["was_approved"].status == "skipped"
    assert [e.event_type for e in await events_of(database, execution_id)] == ["execution.failed"]
    async with database.unit_of_work(read_only=True) as session:
        assert (await session.get(Approval, approval_id)).status == "expired"


async def test_a_template_naming_a_missing_value_fails_with_template_error(database: Database,
                                                                           organization: str) -> None:
    core = core_on(database)
    steps = [{"type": "branch", "id": "first", "condition": "true"},
             {"type": "approval_gate", "id": "ask", "message": "Ticket {{ event_payload.nope }}"}]
    execution_id = await start(database, organization, steps)
    assert await runner.run_execution(core, execution_id) == "failed"
    row, receipts = await execution(database, execution_id)
    assert row.reason == "template_error" and "steps[1].message" in row.error and "nope" in row.error
    assert receipts["first"].status == "completed" and receipts["ask"].status == "failed"
    events = await events_of(database, execution_id)
    assert [e.payload for e in events] == [{"execution_id": execution_id, "agent_id": row.agent_id,
                                            "status": "failed", "reason": "template_error"}]


async def test_a_condition_that_cannot_be_evaluated_fails_with_condition_error(database: Database,
                                                                               organization: str) -> None:
    core = core_on(database)
    steps = [{"type": "branch", "id": "b", "condition": "event_payload.x > 1"}]
    execution_id = await start(database, organization, steps)
    assert await runner.run_execution(core, execution_id) == "failed"
    row, _ = await execution(database, execution_id)
    assert row.reason == "condition_error" and "x" in row.error


async def test_an_ai_step_without_credits_fails_and_charges_nothing(database: Database, organization: str) -> None:
    core = core_on(database)
    async with database.unit_of_work() as session:
        session.add(CreditAllocation(organization_id=organization, monthly_credits=3))
    steps = [{"type": "branch", "id": "first", "condition": "true"},
             {"type": "ai_reason", "id": "think", "model": "quick", "prompt": "Classify {{ event_payload.ticket_id }}",
              "output_schema": {"type": "object"}}]
    execution_id = await start(database, organization, steps)
    assert await runner.run_execution(core, execution_id) == "failed"
    row, receipts = await execution(database, execution_id)
    assert row.reason == "credit_insufficient" and receipts["think"].status == "failed"
    async with database.unit_of_work(read_only=True) as session:
        charges = (await session.execute(select(CreditEntry).where(CreditEntry.execution_id == execution_id))).all()
    assert charges == []


async def test_a_completed_step_is_never_run_again(database: Database, organization: str) -> None:
    core = core_on(database)
    execution_id = await start(database, organization, GATED[2:], payload={"ticket_id": "T-4"})
    assert await runner.run_execution(core, execution_id) == "waiting_approval"
    # A crash after the gate was approved, before the run was sent; the runner runs twice.
    approval_id = await pending_gate(database, execution_id)
    await approvals_service.decide_approval(core, admin_of(organization), approval_id, "approved", None)
    async with database.unit_of_work() as session:  # and the position lost too: the receipt still holds
        await session.execute(update(Execution).where(Execution.id == execution_id).values(position=0))
    assert await runner.run_execution(core, execution_id) == "completed"
    assert await runner.run_execution(core, execution_id) is None
    async with database.unit_of_work(read_only=True) as session:
        gates = (await session.execute(select(Approval).where(Approval.subject_id == execution_id))).scalars().all()
    assert len(gates) == 1  # the gate was not asked again


async def test_recovery_sends_lost_work_again(database: Database, organization: str) -> None:
    core = core_on(database)
    sent = Sent()
    database.task_sender = sent
    try:
        execution_id = await start(database, organization, [{"type": "branch", "id": "b", "condition": "true"}])
        stale = clock.now() - timedelta(minutes=1)
        event_id = await ingest(database, organization)
        async with database.unit_of_work() as session:
            await session.execute(update(Execution).where(Execution.id == execution_id).values(updated_at=stale))
            await session.execute(update(AutomationEvent).where(AutomationEvent.id == event_id)
                                  .values(received_at=stale))
        sent.calls.clear()
        await automation_tasks.recover(core)
        assert {"execution_id": execution_id} in sent.of(runner.RUN_EXECUTION)
        assert {"event_id": event_id} in sent.of(bus.MATCH_EVENT)
        assert await runner.run_execution(core, execution_id) == "completed"
        sent.calls.clear()
        await automation_tasks.recover(core)
        assert {"execution_id": execution_id} not in sent.of(runner.RUN_EXECUTION)
    finally:
        database.task_sender = None


async def test_two_runners_racing_run_each_step_once(database: Database, organization: str) -> None:
    import asyncio

    core = core_on(database)
    execution_id = await start(database, organization, GATED, payload={"ticket_id": "T-5", "priority": "p1"})
    results = await asyncio.gather(runner.run_execution(core, execution_id), runner.run_execution(core, execution_id))
    assert sorted(results, key=str) == [None, "running"]  # one claimed it, the other found its lease
    _, steps = await execution(database, execution_id)
    assert {k: s.status for k, s in steps.items()} == {"is_p1": "completed", "pause": "waiting"}


async def test_an_ai_step_is_charged_once_and_its_output_feeds_the_next_steps(
        database: Database, organization: str, tmp_path: Any) -> None:
    from pydantic_ai.models.test import TestModel

    from errand.kit.config import Settings
    from errand.llm import service as llm_service
    from tests.conftest import SECRET_KEY

    core = core_on(database)
    core.settings = Settings(data_dir=tmp_path, database_url=database.url, secret_key=SECRET_KEY)
    schema = {"type": "object", "properties": {"priority": {"type": "string", "enum": ["p1"]}},
              "required": ["priority"]}
    steps = [{"type": "ai_reason", "id": "think", "model": "standard",
              "prompt": "Classify {{ event_payload.ticket_id }}", "output_schema": schema},
             {"type": "branch", "id": "urgent", "condition": 'steps.think.output.priority == "p1"'}]
    execution_id = await start(database, organization, steps)
    with llm_service.override(TestModel()):
        assert await runner.run_execution(core, execution_id) == "completed"
        assert await runner.run_execution(core, execution_id) is None
    _, receipts = await execution(database, execution_id)
    assert receipts["think"].output == {"priority": "p1"} and receipts["think"].credits_used == 20
    assert receipts["urgent"].output == {"result": True, "next": "end"}
    async with database.unit_of_work(read_only=True) as session:
        charges = (await session.execute(select(CreditEntry.credits, CreditEntry.model, CreditEntry.step_id).where(
            CreditEntry.execution_id == execution_id))).all()
    assert [tuple(c) for c in charges] == [(20, "standard", "think")]
