"""Approvals: bookings a policy holds for a human, decided through the automations dialect.

Le Bernardin costs 225 USD per person and seats 10 covers per slot. With an
APPROVAL_REQUIRED threshold of 1000 USD a party of 5 or more (1125 USD and up) waits for a
decision while a party of 4 (900 USD) is confirmed at once, so the tests can fill a slot
around a held party and see that its covers count.
"""

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from errand.models import Approval
from tests.sandbox.api_support import server_credentials

BOOK = "/api/v1/agent/restaurant/book"
CANCEL = "/api/v1/agent/restaurant/cancel"
MODIFY = "/api/v1/agent/restaurant/modify"
APPROVALS = "/api/approvals"
LE_BERNARDIN = "rst_le-bernardin-new-york"


def booking(day: date, time: str, party_size: int) -> dict:
    """A Le Bernardin booking at a venue-local time."""
    return {
        "restaurantName": "Le Bernardin", "city": "New York", "partySize": party_size,
        "datetime": f"{day.isoformat()}T{time}:00", "customer": {"name": "Jane Doe", "email": "jane@example.com"},
    }


async def remaining(client: httpx.AsyncClient, day: date, time: str) -> int:
    """Covers still free at a slot, as the sandbox provider reports them."""
    response = await client.get(
        f"/sandbox/api/sandbox-tables/restaurants/{LE_BERNARDIN}/availability",
        params={"date": day.isoformat(), "party_size": 1}, auth=server_credentials(),
    )
    assert response.status_code == 200, response.text
    return next((s["remaining"] for s in response.json()["slots"] if s["time"] == time), 0)


async def require_approval_above(org, threshold: float = 1000) -> dict:
    response = await org.admin.post("/api/v1/policies", json={
        "name": f"Ask above {threshold}", "type": "APPROVAL_REQUIRED", "config": {"threshold": threshold},
    })
    assert response.status_code == 201, response.text
    return response.json()


async def book_pending(org, day: date, time: str = "19:00", party_size: int = 6) -> dict:
    """A booking that waits for approval; the policy must already exist."""
    response = await org.agent.post(BOOK, json=booking(day, time, party_size))
    assert response.status_code == 202, response.text
    return response.json()


async def listed(org, status: str | None = None) -> list[dict]:
    response = await org.admin.get(APPROVALS, params={"status": status} if status else None)
    assert response.status_code == 200, response.text
    return response.json()["approvals"]


async def decide(org, approval_id: str, decision: str, note: str | None = None) -> httpx.Response:
    return await org.admin.post(f"{APPROVALS}/{approval_id}/decision", json={"decision": decision, "note": note})


async def transaction(org, transaction_id: str) -> dict:
    response = await org.agent.get(f"/api/v1/transactions/{transaction_id}")
    assert response.status_code == 200, response.text
    return response.json()


def event_types(detail: dict) -> list[str]:
    return [e["type"] for e in detail["events"]]


async def age(server, approval_id: str) -> None:
    """Move an approval's deadline into the past: there is no public way to let time pass."""
    async with server.db.unit_of_work() as session:
        await session.execute(
            update(Approval).where(Approval.id == approval_id)
            .values(expires_at=datetime.now().astimezone() - timedelta(minutes=1))
        )


def assert_invalid_state(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "invalid_state"
    assert body["status"] == 409
    assert body["message"]


@pytest.fixture
async def other_admin(server, mint) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of a second organization, speaking the automations dialect."""
    key = await mint(f"Other {secrets.token_hex(4)}", role="admin")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, headers={"X-Integration-Key": key}) as client:
        yield client


# --- asking ---------------------------------------------------------------------------


async def test_booking_above_threshold_answers_202_and_holds_its_covers(org, day):
    await require_approval_above(org)

    response = await org.agent.post(BOOK, json=booking(day, "19:00", 6))

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "requires_approval"
    assert body["approval"]["approvalId"]
    assert body["approval"]["status"] == "pending"
    assert body["amountUsd"] == 1350
    assert body["reservation"]["reservationId"] is None
    # The held 6 covers count: 4 more fit, a fifth does not.
    filler = await org.agent.post(BOOK, json=booking(day, "19:00", 4))
    assert filler.status_code == 201, filler.text
    full = await org.agent.post(BOOK, json=booking(day, "19:00", 1))
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "CAPACITY_EXCEEDED"


async def test_pending_approval_is_listed_with_message_amount_and_action(org, day):
    policy = await require_approval_above(org)
    pending = await book_pending(org, day)

    approvals = await listed(org, "pending")

    assert [a["id"] for a in approvals] == [pending["approval"]["approvalId"]]
    approval = approvals[0]
    assert approval["status"] == "pending"
    assert approval["transaction_id"] == pending["transactionId"]
    assert approval["policy_id"] == policy["id"]
    assert "Le Bernardin" in approval["message"] and "1350" in approval["message"]
    assert approval["amount_usd"] == 1350
    assert approval["action"]["operation"] == "book"
    assert approval["action"]["partySize"] == 6
    assert approval["action"]["restaurantName"] == "Le Bernardin"
    assert approval["action"]["localStart"] == f"{day.isoformat()}T19:00"
    assert re.fullmatch(r"[0-9a-f]{64}", approval["action_digest"])
    assert approval["action_digest"] == pending["approval"]["actionDigest"]
    created = datetime.fromisoformat(approval["created_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(approval["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=119) <= expires - created <= timedelta(minutes=121)
    assert approval["decided_by"] is None and approval["decided_at"] is None


async def test_listing_with_an_unknown_status_is_invalid(org):
    response = await org.admin.get(APPROVALS, params={"status": "maybe"})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["status"] == 400


async def test_listing_needs_an_integration_key_of_an_admin(org, anon):
    missing = await anon.get(APPROVALS, params={"status": "pending"})
    agent = await anon.get(APPROVALS, params={"status": "pending"}, headers={"X-Integration-Key": org.agent_key})

    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthorized"
    assert agent.status_code == 403
    assert agent.json()["error"] == "forbidden"


# --- deciding --------------------------------------------------------------------------


async def test_approving_confirms_the_booking(org, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)
    approval_id = pending["approval"]["approvalId"]

    response = await decide(org, approval_id, "approved", note="VIP dinner")

    assert response.status_code == 200, response.text
    decided = response.json()
    assert decided["id"] == approval_id
    assert decided["status"] == "approved"
    assert decided["decided_by"]
    assert decided["decided_at"]
    assert decided["note"] == "VIP dinner"
    detail = await transaction(org, pending["transactionId"])
    assert detail["status"] == "confirmed"
    assert detail["reservation"]["reservationId"]
    assert detail["reservation"]["partySize"] == 6
    types = event_types(detail)
    assert {"approval.requested", "approval.approved", "transaction.confirmed"} <= set(types)
    assert types.index("approval.requested") < types.index("approval.approved") < types.index("transaction.confirmed")
    assert await listed(org, "pending") == []
    assert [a["id"] for a in await listed(org, "approved")] == [approval_id]
    assert await remaining(org.agent, day, "19:00") == 4


async def test_denying_marks_the_transaction_denied_and_frees_its_covers(org, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)

    response = await decide(org, pending["approval"]["approvalId"], "denied", note="too expensive")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "denied"
    assert response.json()["decided_at"]
    detail = await transaction(org, pending["transactionId"])
    assert detail["status"] == "denied"
    assert detail["reservation"]["reservationId"] is None
    assert "approval.denied" in event_types(detail)
    assert await remaining(org.agent, day, "19:00") == 10
    cancelled = await org.agent.post(CANCEL, json={"transactionId": pending["transactionId"]})
    assert cancelled.status_code == 409
    assert cancelled.json()["error"]["code"] == "INVALID_STATE"


async def test_deciding_twice_is_invalid_state(org, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)
    approval_id = pending["approval"]["approvalId"]
    assert (await decide(org, approval_id, "approved")).status_code == 200

    again = await decide(org, approval_id, "denied")

    assert_invalid_state(again)
    assert (await transaction(org, pending["transactionId"]))["status"] == "confirmed"
    assert await remaining(org.agent, day, "19:00") == 4


async def test_concurrent_decisions_let_exactly_one_decider_win(org, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)
    approval_id = pending["approval"]["approvalId"]

    responses = await asyncio.gather(*[
        decide(org, approval_id, "approved" if i % 2 else "denied") for i in range(6)
    ])

    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert_invalid_state(response)
    outcome = winners[0].json()["status"]
    detail = await transaction(org, pending["transactionId"])
    assert detail["status"] == {"approved": "confirmed", "denied": "denied"}[outcome]
    assert await remaining(org.agent, day, "19:00") == (4 if outcome == "approved" else 10)


async def test_unknown_approval_is_not_found(org):
    response = await decide(org, "appr_doesnotexist", "approved")

    assert response.status_code == 404
    assert response.json()["error"] == "approval_not_found"
    assert response.json()["status"] == 404


async def test_another_organizations_approval_is_not_found_and_not_listed(org, other_admin, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)
    approval_id = pending["approval"]["approvalId"]

    decided = await other_admin.post(f"{APPROVALS}/{approval_id}/decision", json={"decision": "approved"})
    theirs = await other_admin.get(APPROVALS)

    assert decided.status_code == 404
    assert decided.json()["error"] == "approval_not_found"
    assert theirs.status_code == 200
    assert theirs.json()["approvals"] == []
    assert [a["id"] for a in await listed(org, "pending")] == [approval_id]
    assert (await transaction(org, pending["transactionId"]))["status"] == "requires_approval"


async def test_decision_other_than_approved_or_denied_is_invalid(org, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)

    response = await decide(org, pending["approval"]["approvalId"], "maybe")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["status"] == 400
    assert [a["id"] for a in await listed(org, "pending")] == [pending["approval"]["approvalId"]]


async def test_agent_key_cannot_decide(org, anon, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)

    response = await anon.post(f"{APPROVALS}/{pending['approval']['approvalId']}/decision",
                               json={"decision": "approved"}, headers={"X-Integration-Key": org.agent_key})

    assert response.status_code == 403
    assert (await transaction(org, pending["transactionId"]))["status"] == "requires_approval"


# --- changes while pending -------------------------------------------------------------


async def test_cancel_while_pending_voids_the_approval_and_frees_its_covers(org, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)
    approval_id = pending["approval"]["approvalId"]

    cancelled = await org.agent.post(CANCEL, json={"transactionId": pending["transactionId"]})

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await listed(org, "pending") == []
    assert [a["id"] for a in await listed(org, "void")] == [approval_id]
    assert await remaining(org.agent, day, "19:00") == 10
    assert_invalid_state(await decide(org, approval_id, "approved"))
    assert (await transaction(org, pending["transactionId"]))["status"] == "cancelled"
    assert await remaining(org.agent, day, "19:00") == 10


async def test_modify_while_pending_voids_the_old_approval_and_asks_again(org, day):
    await require_approval_above(org)
    pending = await book_pending(org, day, party_size=6)
    old_id = pending["approval"]["approvalId"]

    modified = await org.agent.post(MODIFY, json={
        "transactionId": pending["transactionId"],
        "updates": {"partySize": 5, "datetime": f"{day.isoformat()}T20:00:00"},
    })

    assert modified.status_code == 202, modified.text
    assert modified.json()["status"] == "requires_approval"
    new_id = modified.json()["approval"]["approvalId"]
    assert new_id != old_id
    assert modified.json()["approval"]["amountUsd"] == 1125
    assert [a["id"] for a in await listed(org, "void")] == [old_id]
    [new] = await listed(org, "pending")
    assert new["id"] == new_id
    assert new["action"]["partySize"] == 5
    assert new["action"]["localStart"] == f"{day.isoformat()}T20:00"
    assert new["amount_usd"] == 1125
    assert await remaining(org.agent, day, "19:00") == 10
    assert await remaining(org.agent, day, "20:00") == 5
    assert_invalid_state(await decide(org, old_id, "approved"))
    approved = await decide(org, new_id, "approved")
    assert approved.status_code == 200, approved.text
    detail = await transaction(org, pending["transactionId"])
    assert detail["status"] == "confirmed"
    assert detail["reservation"]["partySize"] == 5
    assert detail["reservation"]["localDatetime"] == f"{day.isoformat()}T20:00"
    assert detail["amountUsd"] == 1125
    assert await remaining(org.agent, day, "19:00") == 10
    assert await remaining(org.agent, day, "20:00") == 5


async def test_pending_booking_can_shrink_within_its_own_held_covers(org, day):
    # 6 of Le Bernardin's 10 covers are held for the pending booking; asking for 5 in the
    # same slot needs none beyond them, since the old hold is void once the change is made.
    await require_approval_above(org)
    pending = await book_pending(org, day, party_size=6)

    modified = await org.agent.post(MODIFY, json={"transactionId": pending["transactionId"],
                                                  "updates": {"partySize": 5}})

    assert modified.status_code == 202, modified.text
    assert modified.json()["approval"]["approvalId"] != pending["approval"]["approvalId"]
    assert await remaining(org.agent, day, "19:00") == 5


# --- expiry ----------------------------------------------------------------------------


async def test_expired_approval_cannot_be_decided_and_is_recorded_as_expired(server, org, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)
    approval_id = pending["approval"]["approvalId"]
    await age(server, approval_id)

    response = await decide(org, approval_id, "approved")

    assert_invalid_state(response)
    assert [a["id"] for a in await listed(org, "expired")] == [approval_id]
    assert await listed(org, "denied") == []
    detail = await transaction(org, pending["transactionId"])
    assert detail["status"] == "expired"
    assert detail["reservation"]["reservationId"] is None
    assert "approval.expired" in event_types(detail)
    assert await remaining(org.agent, day, "19:00") == 10


async def test_listing_approvals_expires_overdue_ones_and_frees_their_covers(server, org, day):
    await require_approval_above(org)
    pending = await book_pending(org, day)
    approval_id = pending["approval"]["approvalId"]
    await age(server, approval_id)

    assert await listed(org, "pending") == []

    [expired] = await listed(org, "expired")
    assert expired["id"] == approval_id
    assert expired["status"] == "expired"
    assert expired["decided_at"] is None
    assert (await transaction(org, pending["transactionId"]))["status"] == "expired"
    assert await remaining(org.agent, day, "19:00") == 10


# --- modifying a confirmed booking ----------------------------------------------------


async def test_modification_needing_approval_keeps_the_old_booking_until_approved(org, day):
    await require_approval_above(org)
    booked = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    assert booked.status_code == 201, booked.text
    txn_id = booked.json()["transactionId"]
    old_reservation = booked.json()["reservation"]["reservationId"]

    modified = await org.agent.post(MODIFY, json={
        "transactionId": txn_id, "updates": {"partySize": 6, "datetime": f"{day.isoformat()}T20:00:00"},
    })

    assert modified.status_code == 202, modified.text
    assert modified.json()["status"] == "requires_approval"
    waiting = await transaction(org, txn_id)
    assert waiting["reservation"]["reservationId"] == old_reservation
    assert waiting["reservation"]["partySize"] == 2
    assert waiting["reservation"]["localDatetime"] == f"{day.isoformat()}T19:00"
    assert waiting["pendingChange"]["partySize"] == 6
    assert await remaining(org.agent, day, "19:00") == 8
    assert await remaining(org.agent, day, "20:00") == 4

    approved = await decide(org, modified.json()["approval"]["approvalId"], "approved")

    assert approved.status_code == 200, approved.text
    detail = await transaction(org, txn_id)
    assert detail["status"] == "modified"
    assert detail["reservation"]["partySize"] == 6
    assert detail["reservation"]["localDatetime"] == f"{day.isoformat()}T20:00"
    assert detail["amountUsd"] == 1350
    assert await remaining(org.agent, day, "19:00") == 10
    assert await remaining(org.agent, day, "20:00") == 4


async def test_denied_modification_leaves_the_booking_confirmed_as_it_was(org, day):
    await require_approval_above(org)
    booked = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    assert booked.status_code == 201, booked.text
    txn_id = booked.json()["transactionId"]
    modified = await org.agent.post(MODIFY, json={
        "transactionId": txn_id, "updates": {"partySize": 6, "datetime": f"{day.isoformat()}T20:00:00"},
    })
    assert modified.status_code == 202, modified.text

    denied = await decide(org, modified.json()["approval"]["approvalId"], "denied")

    assert denied.status_code == 200, denied.text
    detail = await transaction(org, txn_id)
    assert detail["status"] == "confirmed"
    assert detail["reservation"]["reservationId"] == booked.json()["reservation"]["reservationId"]
    assert detail["reservation"]["partySize"] == 2
    assert detail["reservation"]["localDatetime"] == f"{day.isoformat()}T19:00"
    assert detail["amountUsd"] == 450
    assert "pendingChange" not in detail
    assert await remaining(org.agent, day, "19:00") == 8
    assert await remaining(org.agent, day, "20:00") == 10
