"""The outbox of Errand's own events: recorded with the change and dispatched after it, to every
consumer exactly once, even with two dispatchers racing (PostgreSQL) and after a consumer failed.

The dispatcher is driven as the runners drive it (:func:`errand.outbox.tasks.dispatch` on a
core); consumers are test ones registered like the automations and webhooks ones will be.
Other tests' events share the database, so each test looks only at its own organization's.
"""

import asyncio
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.audit import service as audit_service
from errand.jobs import tasks as job_tasks
from errand.kit import clock
from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.kit.tasks import take_enqueued
from errand.models import AuditEvent, Job, Organization, OutboxEvent
from errand.outbox import service as outbox_service
from errand.outbox import tasks as outbox_tasks
from errand.outbox.consumers import EventConsumers
from errand.outbox.schemas import Event


class Boom(Exception):
    pass


class Recording:
    """A consumer that remembers what it was handed (``delay`` seconds each, to widen races)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.seen: list[Event] = []

    async def accept(self, session: AsyncSession, event: Event) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.seen.append(event)


class Writing:
    """A consumer that writes a row of its own per event (as a webhook delivery would) and fails
    its first ``failures`` batches after writing."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures

    async def accept(self, session: AsyncSession, event: Event) -> None:
        await audit_service.record(session, organization_id=event.organization_id, subject_type="outbox_test",
                                   subject_id=str(event.id), type="accepted", actor="test")
        if self.failures:
            self.failures -= 1
            raise Boom("the consumer cannot write now")


def core(database: Database, *consumers: Any) -> Any:
    return SimpleNamespace(db=database, event_consumers=EventConsumers(*consumers))


async def record(database: Database, organization_id: str, count: int, env: str = "live",
                 event_type: str = "job.created") -> None:
    async with database.unit_of_work() as session:
        for i in range(count):
            await outbox_service.record(session, organization_id=organization_id, env=env, event_type=event_type,
                                        subject_type="job", subject_id=f"job-{i}",
                                        payload={"job_id": f"job-{i}", "status": "pending"})


async def own(database: Database, organization_id: str) -> list[OutboxEvent]:
    async with database.unit_of_work(read_only=True) as session:
        return list((await session.execute(select(OutboxEvent).where(
            OutboxEvent.organization_id == organization_id).order_by(OutboxEvent.id))).scalars())


def ids_of(events: list[Event], organization_id: str) -> list[int]:
    return [e.id for e in events if e.organization_id == organization_id]


async def test_record_refuses_unknown_types_other_modes_and_personal_data(session: AsyncSession) -> None:
    fields: dict[str, Any] = dict(organization_id="org_any", subject_type="job", subject_id="job-1")
    with pytest.raises(ValueError, match="event types"):
        await outbox_service.record(session, env="live", event_type="job.exploded", payload={}, **fields)
    with pytest.raises(ValueError, match="test or live"):
        await outbox_service.record(session, env="staging", event_type="job.created", payload={}, **fields)
    with pytest.raises(ValueError, match="personal data"):
        await outbox_service.record(session, env="live", event_type="job.created",
                                    payload={"job_id": "job-1", "email": "jane@example.com"}, **fields)


async def test_a_transaction_enqueues_one_dispatch_after_commit_and_a_rollback_records_nothing(
    database: Database, organization: str
) -> None:
    async with database.unit_of_work() as session:
        for subject in ("job-1", "job-2", "job-3"):
            await outbox_service.record(session, organization_id=organization, env="live", event_type="job.created",
                                        subject_type="job", subject_id=subject, payload={"job_id": subject})
        assert [call.name for call in take_enqueued(session)] == [outbox_service.DISPATCH]
    with pytest.raises(Boom):
        async with database.unit_of_work() as session:
            await outbox_service.record(session, organization_id=organization, env="live", event_type="job.failed",
                                        subject_type="job", subject_id="job-4", payload={"reason": "error"})
            raise Boom("the change fails after its event was recorded")
    assert [row.subject_id for row in await own(database, organization)] == ["job-1", "job-2", "job-3"]


async def test_every_consumer_receives_each_event_once_in_order(database: Database, organization: str) -> None:
    first, second = Recording(), Recording()
    await record(database, organization, 5)
    await outbox_tasks.dispatch(core(database, first, second))
    await outbox_tasks.dispatch(core(database, first, second))  # nothing left to hand over
    rows = await own(database, organization)
    assert ids_of(first.seen, organization) == ids_of(second.seen, organization) == [row.id for row in rows]
    assert all(row.dispatched_at is not None for row in rows)
    seen = [e for e in first.seen if e.organization_id == organization]
    assert {(e.env, e.event_type, e.subject_type, e.source_product) for e in seen} == {
        ("live", "job.created", "job", "errand")}
    assert seen[0].payload == {"job_id": "job-0", "status": "pending"}


async def test_two_dispatchers_racing_hand_each_event_over_once(
    database: Database, organization: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_tasks, "BATCH", 4)
    consumer = Recording(delay=0.005)
    await record(database, organization, 40)
    counts = await asyncio.gather(*(outbox_tasks.dispatch(core(database, consumer)) for _ in range(2)))
    await outbox_tasks.dispatch(core(database, consumer))  # what either left when it hit MAX_BATCHES
    handed = Counter(ids_of(consumer.seen, organization))
    assert sorted(handed) == [row.id for row in await own(database, organization)]
    assert set(handed.values()) == {1}, handed
    assert sum(counts) >= 40


async def test_a_consumer_that_raises_rolls_the_batch_back_and_it_is_dispatched_again(
    database: Database, organization: str
) -> None:
    writing, recording = Writing(failures=1), Recording()
    await record(database, organization, 3)
    with pytest.raises(Boom):
        await outbox_tasks.dispatch(core(database, writing, recording))
    assert all(row.dispatched_at is None for row in await own(database, organization))
    await outbox_tasks.dispatch(core(database, writing, recording))
    rows = await own(database, organization)
    assert all(row.dispatched_at is not None for row in rows)
    async with database.unit_of_work(read_only=True) as session:
        written = Counter((await session.execute(select(AuditEvent.subject_id).where(
            AuditEvent.organization_id == organization, AuditEvent.subject_type == "outbox_test"))).scalars())
    assert written == {str(row.id): 1 for row in rows}  # the failed batch's writes were rolled back


async def test_a_consumer_reads_only_one_organizations_events_in_one_mode(
    database: Database, organization: str
) -> None:
    async with database.unit_of_work() as session:
        other = new_id("org")
        session.add(Organization(id=other, name=f"service-{other}"))
    await record(database, organization, 2)
    await record(database, organization, 1, env="test", event_type="job.cancelled")
    await record(database, other, 2)
    async with database.unit_of_work(read_only=True) as session:
        live = await outbox_service.events_for(session, organization_id=organization, env="live")
        test = await outbox_service.events_for(session, organization_id=organization, env="test")
        later = await outbox_service.events_for(session, organization_id=organization, env="live",
                                                after_id=live[0].id)
        typed = await outbox_service.events_for(session, organization_id=organization, env="live",
                                                event_types=("job.cancelled",))
        theirs = await outbox_service.events_for(session, organization_id=other, env="live")
    assert [(e.organization_id, e.env) for e in live] == [(organization, "live")] * 2
    assert [e.event_type for e in test] == ["job.cancelled"]
    assert later == live[1:] and typed == []
    assert {e.organization_id for e in theirs} == {other} and len(theirs) == 2


def test_the_dispatch_task_and_its_sweep_are_declared() -> None:
    [task] = outbox_tasks.TASKS
    assert task.name == outbox_service.DISPATCH and task.lock_for({}) == "outbox:dispatch"
    assert [(p.name, p.interval_seconds, p.queue_maintained) for p in outbox_tasks.PERIODIC] == [
        ("dispatch_outbox", 5, False)]


async def test_a_job_whose_runner_was_lost_too_often_reports_one_failure(
    database: Database, organization: str
) -> None:
    stale = clock.now() - timedelta(seconds=job_tasks.STALE_SECONDS + 5)
    ids = {runs: new_id("job") for runs in (1, job_tasks.MAX_RUNS)}
    async with database.unit_of_work() as session:
        for runs, job_id in ids.items():
            session.add(Job(id=job_id, organization_id=organization, api_key_id="key_test", key_env="test",
                            scenario="restaurant", status="running", params={}, profile={}, consent={},
                            client_metadata={}, request_hash="0" * 64, run_token=f"tok-{runs}", run_count=runs,
                            heartbeat_at=stale))
    for _ in range(2):  # a second sweep finds nothing more to report
        await job_tasks.recover_jobs(SimpleNamespace(db=database))  # type: ignore[arg-type]
    async with database.unit_of_work(read_only=True) as session:
        reported = await outbox_service.events_for(session, organization_id=organization, env="test")
    assert [(e.subject_id, e.event_type) for e in reported] == [(ids[job_tasks.MAX_RUNS], "job.failed")]
    assert reported[0].payload == {"job_id": ids[job_tasks.MAX_RUNS], "scenario": "restaurant", "status": "error",
                                   "reason": "error", "detail": "runner_lost"}
