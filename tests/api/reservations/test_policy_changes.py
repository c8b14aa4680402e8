"""Policies are cached per organization, and a change is applied to the very next booking: made
through the API, or written by another process (which bumps the organization's policies_version
in the same transaction, as errand.guard.policies does everywhere).

Golden Gate Grill costs 65 USD per person: party 2 → 130, 5 → 325.
"""

from sqlalchemy import select, update

from errand.kit.ids import new_id
from errand.models import Organization, Policy
from tests.api.reservations.test_policies import BOOK, POLICIES, assert_violation, booking, create_policy


async def test_created_changed_and_deleted_policies_apply_to_the_very_next_booking(org, day):
    # No policies yet, and the organization's empty set is now cached.
    assert (await org.agent.post(BOOK, json=booking(day, "18:00", 5))).status_code == 201

    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 300}, name="Cap 300")
    assert_violation(await org.agent.post(BOOK, json=booking(day, "18:15", 5)), policy)

    raised = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={"config": {"maxAmountUsd": 400}})
    assert raised.status_code == 200, raised.text
    assert (await org.agent.post(BOOK, json=booking(day, "18:30", 5))).status_code == 201

    lowered = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={"config": {"maxAmountUsd": 100},
                                                                         "name": "Cap 100"})
    assert lowered.status_code == 200, lowered.text
    assert_violation(await org.agent.post(BOOK, json=booking(day, "18:45", 2)), lowered.json())

    disabled = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={"enabled": False})
    assert disabled.status_code == 200, disabled.text
    assert (await org.agent.post(BOOK, json=booking(day, "19:00", 2))).status_code == 201

    enabled = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={"enabled": True})
    assert enabled.status_code == 200, enabled.text
    assert_violation(await org.agent.post(BOOK, json=booking(day, "19:15", 2)), enabled.json())

    deleted = await org.admin.delete(f"{POLICIES}/{policy['id']}")
    assert deleted.status_code == 204, deleted.text
    assert (await org.agent.post(BOOK, json=booking(day, "19:30", 2))).status_code == 201


async def test_custom_rule_change_applies_to_the_very_next_booking(org, day):
    policy = await create_policy(org.admin, "CUSTOM", {"rule": "request.partySize > 4"}, name="Small parties")
    assert_violation(await org.agent.post(BOOK, json=booking(day, "18:00", 5)), policy)

    changed = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={"config": {"rule": "request.partySize > 6"}})
    assert changed.status_code == 200, changed.text
    assert (await org.agent.post(BOOK, json=booking(day, "18:15", 5))).status_code == 201
    assert_violation(await org.agent.post(BOOK, json=booking(day, "18:30", 7)), changed.json())


async def test_a_policy_another_process_writes_applies_to_the_very_next_booking(server, org, day):
    # The organization's empty set of policies is now cached by the server.
    assert (await org.agent.post(BOOK, json=booking(day, "18:00", 5))).status_code == 201
    # What another worker's policies.create commits, written here beside the server's caches.
    async with server.db.unit_of_work() as session:
        organization_id = (await session.execute(
            select(Organization.id).where(Organization.name == org.name))).scalar_one()
        session.add(Policy(id=new_id("pol"), organization_id=organization_id, name="Cap 300",
                           type="SPENDING_LIMIT", config={"maxAmountUsd": 300}, enabled=True))
        await session.execute(update(Organization).where(Organization.id == organization_id)
                              .values(policies_version=Organization.policies_version + 1))
    denied = await org.agent.post(BOOK, json=booking(day, "18:15", 5))
    assert denied.status_code == 403, denied.text
    assert denied.json()["error"]["code"] == "POLICY_VIOLATION"
