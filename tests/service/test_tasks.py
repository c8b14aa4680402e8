"""Named tasks enqueued in a unit of work: sent once, after commit; never after a rollback."""

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from errand.kit.db import Database
from errand.kit.ids import new_id
from errand.kit.tasks import TaskCall, enqueue
from errand.models import Organization


class Boom(Exception):
    pass


@pytest.fixture
async def sent(database: Database) -> AsyncIterator[list[tuple[TaskCall, bool]]]:
    """What the database's task sender receives: each call, with whether its organization row
    was already committed (read from another unit of work) when it arrived."""
    received: list[tuple[TaskCall, bool]] = []

    async def sender(calls: list[TaskCall]) -> None:
        for call in calls:
            async with database.unit_of_work(read_only=True) as other:
                row = (await other.execute(select(Organization.id).where(
                    Organization.id == call.args["org_id"]))).scalar_one_or_none()
            received.append((call, row is not None))

    database.task_sender = sender
    try:
        yield received
    finally:
        database.task_sender = None


async def test_a_committed_call_is_sent_once_after_commit(database: Database, sent: list) -> None:
    org_id = new_id("org")
    async with database.unit_of_work() as session:
        session.add(Organization(id=org_id, name=f"tasks-{org_id}"))
        enqueue(session, "test.welcome", org_id=org_id)
        await session.flush()
        assert sent == []  # nothing leaves before the commit
    assert sent == [(TaskCall("test.welcome", {"org_id": org_id}), True)]


async def test_a_rolled_back_call_is_never_sent(database: Database, sent: list) -> None:
    org_id = new_id("org")
    with pytest.raises(Boom):
        async with database.unit_of_work() as session:
            session.add(Organization(id=org_id, name=f"tasks-{org_id}"))
            enqueue(session, "test.welcome", org_id=org_id)
            raise Boom()
    async with database.unit_of_work() as session:  # the next unit of work sends nothing left over
        pass
    assert sent == []


async def test_calls_are_sent_in_order_and_once(database: Database, sent: list) -> None:
    first, second = new_id("org"), new_id("org")
    async with database.unit_of_work() as session:
        for org_id in (first, second):
            session.add(Organization(id=org_id, name=f"tasks-{org_id}"))
            enqueue(session, "test.welcome", org_id=org_id)
    async with database.unit_of_work() as session:
        pass
    assert [call.args["org_id"] for call, committed in sent if committed] == [first, second]
    assert len(sent) == 2
