"""GET /api/v1/transactions/{id}: a transaction with its audit trail, its personal data encrypted at rest."""

import secrets
from datetime import datetime

from sqlalchemy import text

CANCEL = "/api/v1/agent/restaurant/cancel"
MODIFY = "/api/v1/agent/restaurant/modify"


async def test_transaction_shows_its_audit_trail(org, book):
    booked = await book("19:00", 2)
    txn_id = booked["transactionId"]
    modified = await org.agent.post(MODIFY, json={"transaction_id": txn_id, "updates": {"partySize": 4}})
    assert modified.status_code == 200, modified.text
    cancelled = await org.agent.post(CANCEL, json={"transaction_id": txn_id, "reason": "Customer changed plans"})
    assert cancelled.status_code == 200, cancelled.text

    response = await org.agent.get(f"/api/v1/transactions/{txn_id}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["transactionId"] == txn_id
    assert body["status"] == "cancelled"
    assert body["reservation"]["reservationId"] == booked["reservation"]["reservationId"]
    assert body["reservation"]["partySize"] == 4
    assert body["cancelReason"] == "Customer changed plans"
    assert body["customer"] == {"name": "Jane Doe", "email": "jane@example.com", "phone": None}
    events = body["events"]
    assert [e["type"] for e in events] == [
        "transaction.created", "transaction.confirmed", "transaction.modified", "transaction.cancelled",
    ]
    for event in events:
        assert event["actor"] == f"api_key:{org.agent_key[:12]}"
        assert event["createdAt"].endswith("Z")
        datetime.fromisoformat(event["createdAt"])
    assert events[-1]["reason"] == "Customer changed plans"


async def test_transaction_of_another_organization_is_not_found(other_org, book):
    booked = await book("19:00")

    response = await other_org.get(f"/api/v1/transactions/{booked['transactionId']}")

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert "Jane" not in response.text


async def test_unknown_transaction_is_not_found(org):
    response = await org.agent.get("/api/v1/transactions/txn_doesnotexist")

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_customer_details_are_encrypted_at_rest(server, org, book):
    email = f"guest-{secrets.token_hex(6)}@example.com"
    booked = await book("19:00", customer={"name": "Grace Hopper", "email": email, "phone": "+1 415 555 0100"})

    async with server.db.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT customer FROM transactions WHERE id = :id"),
                                     {"id": booked["transactionId"]})).scalar_one()
        audit = (await conn.execute(text("SELECT data, reason FROM audit_events WHERE subject_id = :id"),
                                    {"id": booked["transactionId"]})).all()
        # The sandbox restaurant keeps its own copy of the guest, in the same database.
        guest_copies = (await conn.execute(text("SELECT count(*) FROM sandbox_bookings WHERE guest LIKE :pattern"),
                                           {"pattern": f"%{email}%"})).scalar_one()

    assert stored
    assert guest_copies == 0
    for secret in (email, "Grace Hopper", "555 0100"):
        assert secret not in stored
        assert all(secret not in str(row) for row in audit)
    shown = await org.agent.get(f"/api/v1/transactions/{booked['transactionId']}")
    assert shown.json()["customer"]["email"] == email
