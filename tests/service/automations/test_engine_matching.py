"""Matching events against agents: trigger filters, conditions, client scope, the loop guard,
de-duplication, execution limits and conflict behaviour; and Errand's own events reaching the
bus through the outbox consumer."""

from typing import Any

import pytest
from sqlalchemy import select

from errand.automations import matching
from errand.automations.matching import holds, scope_takes
from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.models import AgentStatus, AuditEvent, AutomationEvent, Execution
from errand.outbox import service as outbox_service
from errand.outbox import tasks as outbox_tasks
from tests.service.automations.support import add_agent, core_on, ingest, trigger

STEPS = [{"type": "branch", "id": "b", "condition": "true"}]


def rule(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


@pytest.mark.parametrize(("filter_", "data", "expected"), [
    (rule("a", "eq", "P1"), {"a": "P1"}, True),
    (rule("a", "eq", "p1"), {"a": "P1"}, False),  # case-sensitive
    (rule("a", "eq", 1), {"a": True}, False),  # true is not 1
    (rule("a", "eq", 1), {"a": 1.0}, True),
    (rule("a", "eq", "5"), {"a": 5}, False),
    (rule("a.b.0", "eq", "x"), {"a": {"b": ["x"]}}, True),
    (rule("a", "ne", "x"), {}, True),  # a missing field differs from every value
    (rule("a", "eq", "x"), {}, False),
    (rule("a", "gt", 10), {"a": 11}, True),
    (rule("a", "gt", 10), {"a": "11"}, False),
    (rule("a", "lt", 10), {"a": 9.5}, True),
    (rule("a", "lt", 10), {}, False),
    (rule("a", "contains", "ell"), {"a": "hello"}, True),
    (rule("a", "contains", "x"), {"a": ["x", "y"]}, True),
    (rule("a", "contains", "x"), {"a": 5}, False),
    (rule("a", "in", ["x", "y"]), {"a": "y"}, True),
    (rule("a", "in", ["x"]), {}, False),
    (rule("a", "not_in", ["x"]), {}, True),
    (rule("a", "not_in", ["x"]), {"a": "x"}, False),
    (rule("a", "eq", None), {"a": None}, True),
    (rule("a", "ne", "x"), {"a": None}, True),
])
def test_filters(filter_: dict[str, Any], data: dict[str, Any], expected: bool) -> None:
    assert holds(filter_, data) is expected


def test_client_scope() -> None:
    assert scope_takes("all", None) and scope_takes("all", "c1")
    assert scope_takes({"include": ["c1"]}, "c1") and not scope_takes({"include": ["c1"]}, "c2")
    assert not scope_takes({"include": ["c1"]}, None)
    assert scope_takes({"exclude": ["c1"]}, None) and not scope_takes({"exclude": ["c1"]}, "c1")


async def matched(database: Database, event_id: str) -> list[str]:
    """The agents that got an execution for ``event_id``."""
    async with database.unit_of_work() as session:
        await matching.match(session, event_id)
    async with database.unit_of_work(read_only=True) as session:
        return list((await session.execute(select(Execution.agent_id).where(Execution.event_id == event_id)
                                           .order_by(Execution.created_at))).scalars())


async def skipped(database: Database, organization: str) -> dict[str, str]:
    async with database.unit_of_work(read_only=True) as session:
        rows = await session.execute(select(AuditEvent.subject_id, AuditEvent.reason).where(
            AuditEvent.organization_id == organization, AuditEvent.type == "execution.skipped"))
        return dict(rows.all())


async def test_trigger_filters_and_conditions_choose_the_agents(database: Database, organization: str) -> None:
    p1 = await add_agent(database, organization, steps=STEPS,
                         trigger=trigger(filters=[rule("escalated_to", "eq", "p1")]))
    gold = await add_agent(database, organization, steps=STEPS,
                           conditions=[rule("client_id", "eq", "gold"), rule("metadata.region", "in", ["eu"])])
    other_type = await add_agent(database, organization, steps=STEPS, trigger=trigger("ticket.closed"))
    other_source = await add_agent(database, organization, steps=STEPS, trigger=trigger(source="crm"))
    draft = await add_agent(database, organization, steps=STEPS, status="draft")
    test_mode = await add_agent(database, organization, steps=STEPS, env="test")

    event = await ingest(database, organization, client_id="gold", payload={"escalated_to": "p1"},
                         metadata={"region": "eu"})
    assert await matched(database, event) == [p1, gold]
    event = await ingest(database, organization, client_id="gold", payload={"escalated_to": "p2"})
    assert await matched(database, event) == []
    assert not {other_type, other_source, draft, test_mode} & set(await matched(
        database, await ingest(database, organization, payload={"escalated_to": "p1"})))


async def test_client_scope_on_real_events(database: Database, organization: str) -> None:
    include = await add_agent(database, organization, steps=STEPS, client_scope={"include": ["c1"]})
    exclude = await add_agent(database, organization, steps=STEPS, client_scope={"exclude": ["c1"]})
    assert await matched(database, await ingest(database, organization, client_id="c1")) == [include]
    assert await matched(database, await ingest(database, organization, client_id="c2")) == [exclude]
    assert await matched(database, await ingest(database, organization)) == [exclude]


async def test_matching_is_idempotent_and_the_loop_guard_holds(database: Database, organization: str) -> None:
    agent = await add_agent(database, organization, steps=STEPS)
    event = await ingest(database, organization)
    assert await matched(database, event) == [agent]
    assert await matched(database, event) == [agent]  # matched once only
    looped = await ingest(database, organization, metadata={"agent_triggered": True})
    assert await matched(database, looped) == []
    async with database.unit_of_work(read_only=True) as session:
        assert (await session.get(AutomationEvent, looped)).matched_at is not None


async def test_the_same_event_key_runs_an_agent_once_within_five_minutes(database: Database,
                                                                         organization: str) -> None:
    agent = await add_agent(database, organization, steps=STEPS)
    key = new_id("psa")
    assert await matched(database, await ingest(database, organization, id=key)) == [agent]
    assert await matched(database, await ingest(database, organization, id=key)) == []
    assert (await skipped(database, organization))[agent] == "duplicate"
    assert await matched(database, await ingest(database, organization, id=new_id("psa"))) == [agent]


async def test_execution_limits(database: Database, organization: str) -> None:
    hourly = await add_agent(database, organization, steps=STEPS, execution_limit={"max_per_hour": 2})
    cooled = await add_agent(database, organization, steps=STEPS, execution_limit={"cooldown_seconds": 3600})
    first = await matched(database, await ingest(database, organization))
    second = await matched(database, await ingest(database, organization))
    third = await matched(database, await ingest(database, organization))
    assert first == [hourly, cooled] and second == [hourly] and third == []
    reasons = await skipped(database, organization)
    assert reasons[hourly] == "execution_limit" and reasons[cooled] == "cooldown"


async def test_override_suppresses_system_agents_and_exclusive_runs_alone(database: Database,
                                                                        organization: str) -> None:
    errand = trigger("transaction.confirmed", source="errand")
    system = "agent_system_finance_notify"
    additive = await add_agent(database, organization, steps=STEPS, trigger=errand)
    own = await ingest_own(database, organization, "transaction.confirmed")
    assert await matched(database, own) == [additive, system]

    override = await add_agent(database, organization, steps=STEPS, trigger=errand, conflict_behavior="override")
    assert await matched(database, await ingest_own(database, organization, "transaction.confirmed")) == [
        additive, override]
    assert (await skipped(database, organization))[system] == "overridden"

    exclusive = await add_agent(database, organization, steps=STEPS, trigger=errand, conflict_behavior="exclusive")
    assert await matched(database, await ingest_own(database, organization, "transaction.confirmed")) == [exclusive]
    assert (await skipped(database, organization))[additive] == "exclusive"


async def test_a_paused_system_agent_does_not_run(database: Database, organization: str) -> None:
    async with database.unit_of_work() as session:
        session.add(AgentStatus(id=new_id("ags"), organization_id=organization, env="live",
                                agent_id="agent_system_finance_notify", status="paused"))
    assert await matched(database, await ingest_own(database, organization, "transaction.confirmed")) == []


async def ingest_own(database: Database, organization: str, event_type: str) -> str:
    """An event of Errand's own on the bus (as the outbox consumer writes it)."""
    event_id = new_id("evt")
    async with database.unit_of_work() as session:
        session.add(AutomationEvent(id=event_id, event_key=f"errand:{event_id}", organization_id=organization,
                                    env="live", source_product="errand", event_type=event_type, client_id=None,
                                    payload={"amount_usd": 2000.0}, event_metadata={}))
    return event_id


async def own_events(database: Database, organization: str) -> list[AutomationEvent]:
    async with database.unit_of_work(read_only=True) as session:
        return list((await session.execute(select(AutomationEvent).where(
            AutomationEvent.organization_id == organization, AutomationEvent.source_product == "errand")
            .order_by(AutomationEvent.received_at))).scalars())


async def test_own_events_reach_matching_through_the_outbox(database: Database, organization: str) -> None:
    core = core_on(database)
    # Nobody listens to job.created: the consumer writes nothing.
    async with database.unit_of_work() as session:
        await outbox_service.record(session, organization_id=organization, env="live", event_type="job.created",
                                    subject_type="job", subject_id="job_1", payload={"job_id": "job_1"})
    await outbox_tasks.dispatch(core)
    assert await own_events(database, organization) == []

    agent = await add_agent(database, organization, steps=STEPS, trigger=trigger("job.created", source="errand"))
    async with database.unit_of_work() as session:
        await outbox_service.record(session, organization_id=organization, env="live", event_type="job.created",
                                    subject_type="job", subject_id="job_2", payload={"job_id": "job_2"})
    async with database.unit_of_work() as session:
        with outbox_service.acting_for("exec_x"):
            await outbox_service.record(session, organization_id=organization, env="live", event_type="job.created",
                                        subject_type="job", subject_id="job_3", payload={"job_id": "job_3"})
    await outbox_tasks.dispatch(core)
    events = await own_events(database, organization)
    assert [e.payload for e in events] == [{"job_id": "job_2"}, {"job_id": "job_3"}]
    assert events[0].event_key.startswith("errand:") and events[0].event_metadata == {}
    assert events[1].event_metadata == {"agent_triggered": True, "execution_id": "exec_x"}
    assert await matched(database, events[0].id) == [agent]
    assert await matched(database, events[1].id) == []  # the loop guard



async def test_an_approval_requested_reaches_the_escalation_system_agent(database: Database,
                                                                         organization: str) -> None:
    from datetime import timedelta
    from decimal import Decimal

    from errand.guard import service as guard_service

    core = core_on(database)
    async with database.unit_of_work() as session:
        await guard_service.approvals.request(
            session, organization_id=organization, env="live", scenario="restaurant", subject_type="job",
            subject_id="job_x", action={"venueName": "Bistro"}, amount_usd=Decimal("20"), message="ok?",
            policy_id=None, ttl=timedelta(hours=1))
    await outbox_tasks.dispatch(core)
    events = await own_events(database, organization)
    assert [e.event_type for e in events] == ["approval.requested"]
    assert await matched(database, events[0].id) == ["agent_system_approval_escalation"]
