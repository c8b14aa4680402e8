"""Policies are cached per organization for at most a second, and a change made through the API is
applied to the very next booking: the server that changes a policy forgets its cached copy at once.

Golden Gate Grill costs 65 USD per person: party 2 → 130, 5 → 325.
"""

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
