"""A booking with an Idempotency-Key reads its organization's policies version in the claim itself.

The claim's statement returns the committed ``policies_version`` beside the lock
(errand.guard.policy_cache.saw_version), so the policy check that follows reads no version of its
own, and a policy another process committed before the request is still applied to it.
"""

from typing import Any

import pytest
from sqlalchemy import select, update

from errand.guard import policy_cache
from errand.kit.db import Database
from errand.models import Organization, Policy
from tests.api.reservations.test_idempotency import key
from tests.api.reservations.test_policies import BOOK, booking, create_policy


@pytest.fixture
def version_reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every separate read of an organization's policies version, in this process."""
    reads: list[Any] = []
    read_one = Database.read_one

    async def counted(self: Database, statement: Any, params: dict[str, Any]) -> Any:
        if statement is policy_cache._VERSION:
            reads.append(params)
        return await read_one(self, statement, params)

    monkeypatch.setattr(Database, "read_one", counted)
    return reads


async def test_a_keyed_booking_reads_no_policies_version_of_its_own(org, day, version_reads) -> None:
    assert (await org.agent.post(BOOK, json=booking(day, "18:00", 2))).status_code == 201
    assert len(version_reads) == 1  # without a key there is no claim to read it

    keyed = await org.agent.post(BOOK, json=booking(day, "18:15", 2), headers={"Idempotency-Key": key()})

    assert keyed.status_code == 201, keyed.text
    assert len(version_reads) == 1


async def test_a_policy_change_another_process_made_applies_to_the_next_keyed_booking(server, org, day) -> None:
    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 1000}, name="Cap")
    assert (await org.agent.post(BOOK, json=booking(day, "18:00", 5), headers={"Idempotency-Key": key()})
            ).status_code == 201
    # What another worker's policies.update commits: the new config and the version, in one transaction.
    async with server.db.unit_of_work() as session:
        owner = (await session.execute(select(Policy.organization_id).where(Policy.id == policy["id"]))).scalar_one()
        await session.execute(update(Policy).where(Policy.id == policy["id"]).values(config={"maxAmountUsd": 300}))
        await session.execute(update(Organization).where(Organization.id == owner)
                              .values(policies_version=Organization.policies_version + 1))

    denied = await org.agent.post(BOOK, json=booking(day, "18:15", 5), headers={"Idempotency-Key": key()})

    assert denied.status_code == 403, denied.text
    assert denied.json()["error"]["code"] == "POLICY_VIOLATION"
