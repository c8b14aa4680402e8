"""POST /api/v1/agent/restaurant/cancel: cancelling frees the table, once, in the caller's organization only."""

from datetime import datetime

import pytest

BOOK = "/api/v1/agent/restaurant/book"
CANCEL = "/api/v1/agent/restaurant/cancel"


async def test_cancel_answers_cancelled_with_cancelled_at(org, book):
    booked = await book("19:00", 4)

    response = await org.agent.post(CANCEL, json={"transaction_id": booked["transactionId"],
                                                  "reason": "Customer changed plans"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["transactionId"] == booked["transactionId"]
    assert body["status"] == "cancelled"
    reservation = body["reservation"]
    assert reservation["reservationId"] == booked["reservation"]["reservationId"]
    assert reservation["restaurantName"] == "Golden Gate Grill"
    assert reservation["city"] == "San Francisco"
    assert reservation["cancelledAt"].endswith("Z")
    datetime.fromisoformat(reservation["cancelledAt"])


@pytest.mark.parametrize("id_field", ["transaction_id", "transactionId"])
async def test_cancel_accepts_either_casing_of_transaction_id(org, book, id_field):
    booked = await book("19:15")

    response = await org.agent.post(CANCEL, json={id_field: booked["transactionId"]})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"


async def test_cancelling_frees_the_covers(org, book, booking_request):
    bookings = [await book("19:00", 10) for _ in range(3)]  # the slot's 30 covers
    full = await org.agent.post(BOOK, json=booking_request("19:00", 1))
    assert full.status_code == 409, full.text

    cancelled = await org.agent.post(CANCEL, json={"transaction_id": bookings[0]["transactionId"]})
    assert cancelled.status_code == 200, cancelled.text

    await book("19:00", 10)


async def test_cancelling_twice_is_invalid_state(org, book):
    booked = await book("19:30")
    first = await org.agent.post(CANCEL, json={"transaction_id": booked["transactionId"]})
    assert first.status_code == 200, first.text

    second = await org.agent.post(CANCEL, json={"transaction_id": booked["transactionId"]})

    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "INVALID_STATE"


async def test_cancelling_an_unknown_transaction_is_not_found(org):
    response = await org.agent.post(CANCEL, json={"transaction_id": "txn_doesnotexist"})

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_cancelling_another_organizations_transaction_is_not_found_and_leaves_it(org, other_org, book):
    booked = await book("20:00")

    response = await other_org.post(CANCEL, json={"transaction_id": booked["transactionId"]})

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert "Golden Gate" not in response.text
    mine = await org.agent.get(f"/api/v1/transactions/{booked['transactionId']}")
    assert mine.json()["status"] == "confirmed"
    assert [e["type"] for e in mine.json()["events"]] == ["transaction.created", "transaction.confirmed"]


@pytest.mark.parametrize("body", [{"reason": "no id"}, {"transaction_id": ""}], ids=["missing", "empty"])
async def test_cancel_without_transaction_id_is_invalid_request(org, body):
    response = await org.agent.post(CANCEL, json=body)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert "transaction_id" in error["message"] or "transactionId" in error["message"]
