"""POST /api/v1/agent/restaurant/modify: changes re-check capacity, keep the booking when refused."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

BOOK = "/api/v1/agent/restaurant/book"
CANCEL = "/api/v1/agent/restaurant/cancel"
MODIFY = "/api/v1/agent/restaurant/modify"


async def fetch(org, transaction_id: str) -> dict:
    response = await org.agent.get(f"/api/v1/transactions/{transaction_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def test_modify_changes_party_size_and_time(org, day, book):
    booked = await book("19:00", 2)

    response = await org.agent.post(MODIFY, json={
        "transaction_id": booked["transactionId"],
        "updates": {"partySize": 4, "datetime": f"{day.isoformat()}T20:00:00"},
    })

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["transactionId"] == booked["transactionId"]
    assert body["status"] == "modified"
    reservation = body["reservation"]
    assert reservation["restaurantName"] == "Golden Gate Grill"
    assert reservation["city"] == "San Francisco"
    assert reservation["partySize"] == 4
    assert reservation["localDatetime"] == f"{day.isoformat()}T20:00"
    local = datetime(day.year, day.month, day.day, 20, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert reservation["datetime"] == local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["amountUsd"] == 260.0
    stored = await fetch(org, booked["transactionId"])
    assert (stored["status"], stored["reservation"]["partySize"]) == ("modified", 4)
    assert stored["reservation"]["localDatetime"] == f"{day.isoformat()}T20:00"


async def test_modify_accepts_camel_case_id_and_snake_case_updates(org, book):
    booked = await book("19:00", 2)

    response = await org.agent.post(MODIFY, json={"transactionId": booked["transactionId"],
                                                  "updates": {"party_size": 5}})

    assert response.status_code == 200, response.text
    assert response.json()["reservation"]["partySize"] == 5


async def test_modify_into_a_full_slot_is_capacity_exceeded_and_keeps_the_booking(org, day, book, booking_request):
    booked = await book("19:00", 2)
    for _ in range(3):
        await book("19:30", 10)

    response = await org.agent.post(MODIFY, json={
        "transaction_id": booked["transactionId"], "updates": {"datetime": f"{day.isoformat()}T19:30:00"},
    })

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "CAPACITY_EXCEEDED"
    stored = await fetch(org, booked["transactionId"])
    assert stored["status"] == "confirmed"
    assert stored["reservation"]["partySize"] == 2
    assert stored["reservation"]["localDatetime"] == f"{day.isoformat()}T19:00"
    # The booking still holds its 2 covers at 19:00: exactly 28 more fit.
    for size in (10, 10, 8):
        await book("19:00", size)
    over = await org.agent.post(BOOK, json=booking_request("19:00", 1))
    assert over.status_code == 409, over.text


async def test_growing_a_party_beyond_the_slot_is_capacity_exceeded(org, book):
    venue = {"restaurant": "Le Bernardin", "city": "New York"}  # 10 covers per slot
    await book("19:00", 6, **venue)
    booked = await book("19:00", 4, **venue)

    response = await org.agent.post(MODIFY, json={"transaction_id": booked["transactionId"],
                                                  "updates": {"partySize": 5}})

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "CAPACITY_EXCEEDED"
    assert (await fetch(org, booked["transactionId"]))["reservation"]["partySize"] == 4


async def test_party_larger_than_the_venue_seats_is_capacity_exceeded(org, book):
    booked = await book("19:00", 2, restaurant="Le Bernardin", city="New York")  # seats parties up to 6

    response = await org.agent.post(MODIFY, json={"transaction_id": booked["transactionId"],
                                                  "updates": {"partySize": 7}})

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "CAPACITY_EXCEEDED"


async def test_moving_a_booking_frees_its_old_slot(org, day, book):
    bookings = [await book("19:00", 10) for _ in range(3)]

    response = await org.agent.post(MODIFY, json={
        "transaction_id": bookings[0]["transactionId"], "updates": {"datetime": f"{day.isoformat()}T19:15:00"},
    })
    assert response.status_code == 200, response.text

    await book("19:00", 10)


async def test_customer_only_change_keeps_time_and_party(org, day, book):
    booked = await book("19:00", 3)

    response = await org.agent.post(MODIFY, json={"transaction_id": booked["transactionId"],
                                                  "updates": {"customer": {"name": "Jane Smith"}}})

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "modified"
    assert response.json()["reservation"]["partySize"] == 3
    assert response.json()["reservation"]["datetime"] == booked["reservation"]["datetime"]
    stored = await fetch(org, booked["transactionId"])
    assert stored["customer"]["name"] == "Jane Smith"
    assert stored["customer"]["email"] == "jane@example.com"


async def test_modifying_a_cancelled_transaction_is_invalid_state(org, book):
    booked = await book("19:00")
    cancelled = await org.agent.post(CANCEL, json={"transaction_id": booked["transactionId"]})
    assert cancelled.status_code == 200, cancelled.text

    response = await org.agent.post(MODIFY, json={"transaction_id": booked["transactionId"],
                                                  "updates": {"partySize": 3}})

    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "INVALID_STATE"
    assert (await fetch(org, booked["transactionId"]))["status"] == "cancelled"


@pytest.mark.parametrize("body", [{"updates": {}}, {}], ids=["empty-updates", "no-updates"])
async def test_modify_without_changes_is_invalid_request(org, book, body):
    booked = await book("19:00")

    response = await org.agent.post(MODIFY, json={"transaction_id": booked["transactionId"], **body})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert "updates" in error["message"]


@pytest.mark.parametrize(("updates", "field"), [
    ({"partySize": 0}, "partySize"),
    ({"datetime": "2020-06-01T19:00:00"}, "datetime"),
    ({"datetime": "9999-12-31T23:59:00"}, "datetime"),
    ({"customer": {"email": "not-an-email"}}, "email"),
    ({"customer": {"name": None}}, "customer.name"),
], ids=["party-zero", "past-time", "year-9999", "bad-email", "null-name"])
async def test_invalid_update_is_400_naming_the_field(org, book, updates, field):
    booked = await book("19:00", 2)

    response = await org.agent.post(MODIFY, json={"transaction_id": booked["transactionId"], "updates": updates})

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_REQUEST"
    assert field in response.json()["error"]["message"]
    stored = await fetch(org, booked["transactionId"])
    assert (stored["status"], stored["reservation"]["partySize"]) == ("confirmed", 2)


async def test_modifying_an_unknown_transaction_is_not_found(org):
    response = await org.agent.post(MODIFY, json={"transaction_id": "txn_doesnotexist", "updates": {"partySize": 3}})

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_modifying_another_organizations_transaction_is_not_found_and_leaves_it(org, other_org, book):
    booked = await book("19:00", 2)

    response = await other_org.post(MODIFY, json={"transaction_id": booked["transactionId"],
                                                  "updates": {"partySize": 6, "customer": {"name": "Mallory"}}})

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"
    stored = await fetch(org, booked["transactionId"])
    assert (stored["status"], stored["reservation"]["partySize"]) == ("confirmed", 2)
    assert stored["customer"]["name"] == "Jane Doe"


async def test_a_modified_booking_can_be_modified_again(org, book):
    booked = await book("19:00", 2)

    first = await org.agent.post(MODIFY, json={"transaction_id": booked["transactionId"], "updates": {"partySize": 3}})
    second = await org.agent.post(MODIFY, json={"transaction_id": booked["transactionId"], "updates": {"partySize": 5}})

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "modified"
    assert second.json()["reservation"]["partySize"] == 5
    events = [e["type"] for e in (await fetch(org, booked["transactionId"]))["events"]]
    assert events.count("transaction.modified") == 2
