"""Policies: their CRUD, the validation of each type's config, and their enforcement on bookings.

Golden Gate Grill (San Francisco, America/Los_Angeles) costs 65 USD per person, so a
booking's amount is 65 × party size: 4 → 260, 5 → 325, 8 → 520, 9 → 585.
"""

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.sandbox.api_support import server_credentials

BOOK = "/api/v1/agent/restaurant/book"
POLICIES = "/api/v1/policies"
GOLDEN_GATE = "rst_golden-gate-grill-san-francisco"
SAN_FRANCISCO = ZoneInfo("America/Los_Angeles")


def booking(day: date, time: str, party_size: int) -> dict:
    """A Golden Gate Grill booking at a venue-local time."""
    return {
        "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": party_size,
        "datetime": f"{day.isoformat()}T{time}:00", "customer": {"name": "Jane Doe"},
    }


def utc_z(day: date, local_time: str) -> str:
    """A San Francisco wall-clock time on ``day`` written in UTC with a ``Z``."""
    local = datetime.fromisoformat(f"{day.isoformat()}T{local_time}").replace(tzinfo=SAN_FRANCISCO)
    return local.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def remaining(client: httpx.AsyncClient, day: date, time: str) -> int:
    """Covers still free at a slot, as the sandbox provider reports them."""
    response = await client.get(
        f"/sandbox/api/sandbox-tables/restaurants/{GOLDEN_GATE}/availability",
        params={"date": day.isoformat(), "party_size": 1}, auth=server_credentials(),
    )
    assert response.status_code == 200, response.text
    return next((s["remaining"] for s in response.json()["slots"] if s["time"] == time), 0)


async def create_policy(admin: httpx.AsyncClient, type: str, config: dict, name: str | None = None,
                        **extra: object) -> dict:
    response = await admin.post(POLICIES, json={"name": name or f"{type} policy", "type": type,
                                                "config": config, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def assert_invalid(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert field in error["message"], error
    assert any(d["field"] == field or d["field"].startswith(field + ".") for d in error["details"]), error


def assert_violation(response: httpx.Response, policy: dict) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "POLICY_VIOLATION"
    assert policy["id"] in error["message"]
    assert policy["name"] in error["message"]


@dataclass
class Stranger:
    """Agent and admin clients of a second organization."""

    agent: httpx.AsyncClient
    admin: httpx.AsyncClient


@pytest.fixture
async def stranger(server, mint) -> AsyncIterator[Stranger]:
    name = f"Other {secrets.token_hex(4)}"
    agent_key, admin_key = await mint(name), await mint(name, role="admin")
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {agent_key}"}) as agent,
        httpx.AsyncClient(base_url=server.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {admin_key}"}) as admin,
    ):
        yield Stranger(agent, admin)


# --- CRUD -------------------------------------------------------------------------------


async def test_create_returns_the_policy(org):
    response = await org.admin.post(POLICIES, json={
        "name": "Cap", "type": "SPENDING_LIMIT", "config": {"maxAmountUsd": 500},
    })

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "name", "type", "config", "enabled", "createdAt", "updatedAt"}
    assert body["name"] == "Cap"
    assert body["type"] == "SPENDING_LIMIT"
    assert body["config"] == {"maxAmountUsd": 500}
    assert body["enabled"] is True
    assert body["createdAt"] and body["updatedAt"]


async def test_list_shows_only_the_organizations_own_policies(org, stranger):
    mine = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 500}, name="Mine")
    theirs = await create_policy(stranger.admin, "RATE_LIMIT", {"maxRequestsPerHour": 5}, name="Theirs")

    listed = await org.agent.get(POLICIES)
    listed_by_them = await stranger.agent.get(POLICIES)

    assert listed.status_code == 200, listed.text
    assert listed.json()["policies"] == [mine]
    assert listed_by_them.json()["policies"] == [theirs]


async def test_patch_changes_name_config_and_enabled(org):
    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 500}, name="Cap")

    response = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={
        "name": "Lower cap", "config": {"maxAmountUsd": 100}, "enabled": False,
    })

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["type"], body["createdAt"]) == (policy["id"], policy["type"], policy["createdAt"])
    assert (body["name"], body["config"], body["enabled"]) == ("Lower cap", {"maxAmountUsd": 100}, False)
    assert (await org.agent.get(POLICIES)).json()["policies"] == [body]


async def test_patch_with_invalid_config_is_refused_and_changes_nothing(org):
    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 500})

    response = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={"config": {"maxAmountUsd": -1}})

    assert_invalid(response, "config.maxAmountUsd")
    assert (await org.agent.get(POLICIES)).json()["policies"] == [policy]


async def test_delete_answers_204_and_the_policy_is_gone(org):
    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 500})

    deleted = await org.admin.delete(f"{POLICIES}/{policy['id']}")

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await org.agent.get(POLICIES)).json()["policies"] == []
    again = await org.admin.delete(f"{POLICIES}/{policy['id']}")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "NOT_FOUND"
    patched = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={"enabled": False})
    assert patched.status_code == 404


async def test_agent_key_cannot_change_policies(org):
    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 500})

    created = await org.agent.post(POLICIES, json={"name": "x", "type": "RATE_LIMIT",
                                                   "config": {"maxRequestsPerHour": 1}})
    patched = await org.agent.patch(f"{POLICIES}/{policy['id']}", json={"enabled": False})
    deleted = await org.agent.delete(f"{POLICIES}/{policy['id']}")

    assert [r.status_code for r in (created, patched, deleted)] == [403, 403, 403]
    assert (await org.agent.get(POLICIES)).json()["policies"] == [policy]


async def test_strangeranizations_policy_cannot_be_patched_or_deleted(org, stranger):
    theirs = await create_policy(stranger.admin, "SPENDING_LIMIT", {"maxAmountUsd": 0})

    patched = await org.admin.patch(f"{POLICIES}/{theirs['id']}", json={"enabled": False})
    deleted = await org.admin.delete(f"{POLICIES}/{theirs['id']}")

    assert patched.status_code == 404
    assert patched.json()["error"]["code"] == "NOT_FOUND"
    assert deleted.status_code == 404
    assert (await stranger.agent.get(POLICIES)).json()["policies"] == [theirs]


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(("type", "config", "field"), [
    ("SPENDING_LIMIT", {"maxAmountUsd": -5}, "config.maxAmountUsd"),
    ("SPENDING_LIMIT", {}, "config.maxAmountUsd"),
    ("TIME_RESTRICTION", {"allowedHours": [25, 3]}, "config.allowedHours"),
    ("TIME_RESTRICTION", {"allowedHours": [9]}, "config.allowedHours"),
    ("RATE_LIMIT", {"maxRequestsPerHour": 0}, "config.maxRequestsPerHour"),
    ("APPROVAL_REQUIRED", {"threshold": -1}, "config.threshold"),
    ("SPENDING_LIMIT", {"maxAmountUsd": 500, "currency": "EUR"}, "config.currency"),
    ("CUSTOM", {"rule": "request.partySize > 8", "severity": "high"}, "config.severity"),
])
async def test_invalid_config_is_refused_naming_the_field(org, type, config, field):
    response = await org.admin.post(POLICIES, json={"name": "Bad", "type": type, "config": config})

    assert_invalid(response, field)
    assert (await org.agent.get(POLICIES)).json()["policies"] == []


async def test_unknown_type_is_refused(org):
    response = await org.admin.post(POLICIES, json={"name": "Bad", "type": "BUDGET", "config": {}})

    assert_invalid(response, "type")


async def test_custom_rule_that_does_not_compile_is_refused_at_save_time(org):
    response = await org.admin.post(POLICIES, json={
        "name": "Broken", "type": "CUSTOM", "config": {"rule": "request.partySize >"},
    })

    assert_invalid(response, "config.rule")
    assert (await org.agent.get(POLICIES)).json()["policies"] == []


async def test_custom_rule_on_an_unknown_field_is_refused_at_save_time(org):
    response = await org.admin.post(POLICIES, json={
        "name": "Typo", "type": "CUSTOM", "config": {"rule": "request.nope > 1"},
    })

    assert_invalid(response, "config.rule")


# --- enforcement ------------------------------------------------------------------------


async def test_custom_rule_denies_matching_bookings_naming_the_policy(org, day):
    policy = await create_policy(org.admin, "CUSTOM", {"rule": "request.partySize > 8 && request.amountUsd > 300"},
                                 name="No big spenders")

    denied = await org.agent.post(BOOK, json=booking(day, "19:00", 9))
    allowed = await org.agent.post(BOOK, json=booking(day, "19:15", 8))

    assert_violation(denied, policy)
    assert await remaining(org.agent, day, "19:00") == 30
    assert allowed.status_code == 201, allowed.text
    assert allowed.json()["amountUsd"] == 520


async def test_spending_limit_denies_above_the_limit_only(org, day):
    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 260}, name="Cap 260")

    above = await org.agent.post(BOOK, json=booking(day, "19:00", 5))
    at_limit = await org.agent.post(BOOK, json=booking(day, "19:15", 4))

    assert_violation(above, policy)
    assert "325" in above.json()["error"]["message"]
    assert at_limit.status_code == 201, at_limit.text
    assert at_limit.json()["amountUsd"] == 260


async def test_denial_leaves_capacity_untouched(org, day):
    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 0})

    denied = await org.agent.post(BOOK, json=booking(day, "19:00", 10))

    assert_violation(denied, policy)
    assert await remaining(org.agent, day, "19:00") == 30


async def test_time_restriction_uses_venue_local_hour_start_inclusive_end_exclusive(org, day):
    policy = await create_policy(org.admin, "TIME_RESTRICTION", {"allowedHours": [11, 12]}, name="Lunch only")

    # Sent in UTC: the server must judge San Francisco's hour, not the UTC one.
    at_start = await org.agent.post(BOOK, json={**booking(day, "11:00", 2), "datetime": utc_z(day, "11:00")})
    last_slot = await org.agent.post(BOOK, json={**booking(day, "11:45", 2), "datetime": utc_z(day, "11:45")})
    at_end = await org.agent.post(BOOK, json={**booking(day, "12:00", 2), "datetime": utc_z(day, "12:00")})
    before = await org.agent.post(BOOK, json={**booking(day, "10:45", 2), "datetime": utc_z(day, "10:45")})

    assert at_start.status_code == 201, at_start.text
    assert last_slot.status_code == 201, last_slot.text
    assert last_slot.json()["reservation"]["localDatetime"] == f"{day.isoformat()}T11:45"
    assert_violation(at_end, policy)
    assert_violation(before, policy)
    assert await remaining(org.agent, day, "12:00") == 30


async def test_rate_limit_answers_429_with_retry_after_naming_the_policy(org, day):
    policy = await create_policy(org.admin, "RATE_LIMIT", {"maxRequestsPerHour": 2}, name="Two an hour")

    first = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    second = await org.agent.post(BOOK, json=booking(day, "19:15", 2))
    third = await org.agent.post(BOOK, json=booking(day, "19:30", 2))

    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert third.status_code == 429, third.text
    assert third.json()["error"]["code"] == "RATE_LIMITED"
    assert policy["id"] in third.json()["error"]["message"]
    assert policy["name"] in third.json()["error"]["message"]
    assert int(third.headers["Retry-After"]) > 0
    assert await remaining(org.agent, day, "19:30") == 30


async def test_disabled_policy_does_not_apply(org, day):
    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 0}, enabled=False)

    while_disabled = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    enabled = await org.admin.patch(f"{POLICIES}/{policy['id']}", json={"enabled": True})
    once_enabled = await org.agent.post(BOOK, json=booking(day, "19:15", 2))

    assert policy["enabled"] is False
    assert while_disabled.status_code == 201, while_disabled.text
    assert enabled.status_code == 200, enabled.text
    assert_violation(once_enabled, policy)


async def test_deleted_policy_no_longer_applies(org, day):
    policy = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 0})
    assert_violation(await org.agent.post(BOOK, json=booking(day, "19:00", 2)), policy)

    assert (await org.admin.delete(f"{POLICIES}/{policy['id']}")).status_code == 204
    response = await org.agent.post(BOOK, json=booking(day, "19:00", 2))

    assert response.status_code == 201, response.text


async def test_deny_beats_requires_approval(org, day):
    await create_policy(org.admin, "APPROVAL_REQUIRED", {"threshold": 100}, name="Ask above 100")
    cap = await create_policy(org.admin, "SPENDING_LIMIT", {"maxAmountUsd": 200}, name="Cap 200")

    denied = await org.agent.post(BOOK, json=booking(day, "19:00", 4))
    needs_approval = await org.agent.post(BOOK, json=booking(day, "19:15", 3))

    assert_violation(denied, cap)
    assert await remaining(org.agent, day, "19:00") == 30
    assert needs_approval.status_code == 202, needs_approval.text
    assert needs_approval.json()["status"] == "requires_approval"


async def test_strangeranizations_policies_do_not_apply(org, stranger, day):
    await create_policy(stranger.admin, "SPENDING_LIMIT", {"maxAmountUsd": 0})
    await create_policy(stranger.admin, "RATE_LIMIT", {"maxRequestsPerHour": 1})

    first = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    second = await org.agent.post(BOOK, json=booking(day, "19:15", 2))

    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert (await org.agent.get(POLICIES)).json()["policies"] == []


async def test_custom_rule_can_ask_for_approval_instead_of_denying(org, day):
    await create_policy(org.admin, "CUSTOM", {"rule": "request.partySize >= 6", "action": "requires_approval"},
                        name="Big tables need a human")

    large = await org.agent.post(BOOK, json=booking(day, "19:00", 6))
    small = await org.agent.post(BOOK, json=booking(day, "19:15", 5))

    assert large.status_code == 202, large.text
    assert large.json()["status"] == "requires_approval"
    assert large.json()["approval"]["approvalId"]
    assert small.status_code == 201, small.text


async def test_policies_are_judged_again_when_a_booking_is_modified(org, day):
    booked = await org.agent.post(BOOK, json=booking(day, "11:00", 2))
    assert booked.status_code == 201, booked.text
    policy = await create_policy(org.admin, "TIME_RESTRICTION", {"allowedHours": [11, 12]}, name="Lunch only")
    txn_id = booked.json()["transactionId"]

    moved = await org.agent.post("/api/v1/agent/restaurant/modify", json={
        "transactionId": txn_id, "updates": {"datetime": utc_z(day, "19:00")},
    })

    assert_violation(moved, policy)
    detail = (await org.agent.get(f"/api/v1/transactions/{txn_id}")).json()
    assert detail["status"] == "confirmed"
    assert detail["reservation"]["localDatetime"] == f"{day.isoformat()}T11:00"
    assert await remaining(org.agent, day, "19:00") == 30
    assert await remaining(org.agent, day, "11:00") == 28
