"""POST /api/v1/agent/restaurant/book: the contract's success body and each documented refusal."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

BOOK = "/api/v1/agent/restaurant/book"
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def utc_iso(local: datetime, zone: ZoneInfo = LOS_ANGELES) -> str:
    return local.replace(tzinfo=zone).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_invalid(response: Any, field: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert field in error["message"]
    assert field in [issue["field"] for issue in error["details"]]


async def transactions_of(server: Any, org_name: str) -> int:
    async with server.db.engine.connect() as conn:
        return (await conn.execute(
            text("SELECT count(*) FROM transactions t JOIN organizations o ON o.id = t.organization_id "
                 "WHERE o.name = :name"),
            {"name": org_name},
        )).scalar_one()


async def test_booking_answers_201_with_every_contract_field(org, day, booking_request):
    response = await org.agent.post(BOOK, json=booking_request("19:00", 4))

    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["transactionId"], str) and body["transactionId"]
    assert body["status"] == "confirmed"
    reservation = body["reservation"]
    assert isinstance(reservation["reservationId"], str) and reservation["reservationId"]
    assert reservation["restaurantName"] == "Golden Gate Grill"
    assert reservation["city"] == "San Francisco"
    assert reservation["partySize"] == 4
    assert reservation["datetime"] == utc_iso(datetime.combine(day, datetime.min.time()).replace(hour=19))
    assert body["amountUsd"] == 260.0  # 65 USD per person × 4


async def test_time_with_offset_is_converted_to_venue_local_time(org, day, booking_request):
    response = await org.agent.post(BOOK, json=booking_request(datetime=f"{day.isoformat()}T19:00:00Z"))

    assert response.status_code == 201, response.text
    reservation = response.json()["reservation"]
    expected_local = datetime(day.year, day.month, day.day, 19, tzinfo=UTC).astimezone(LOS_ANGELES)
    assert reservation["datetime"] == f"{day.isoformat()}T19:00:00Z"
    assert reservation["localDatetime"] == expected_local.strftime("%Y-%m-%dT%H:%M")
    assert reservation["timezone"] == "America/Los_Angeles"


async def test_time_without_offset_is_taken_as_venue_local_time(org, day, booking_request):
    response = await org.agent.post(BOOK, json=booking_request("19:00"))

    assert response.status_code == 201, response.text
    reservation = response.json()["reservation"]
    assert reservation["localDatetime"] == f"{day.isoformat()}T19:00"
    assert reservation["datetime"] == utc_iso(datetime(day.year, day.month, day.day, 19))


async def test_snake_case_body_is_accepted(org, day):
    response = await org.agent.post(BOOK, json={
        "restaurant_name": "Golden Gate Grill",
        "city": "San Francisco",
        "party_size": 3,
        "datetime": f"{day.isoformat()}T18:30:00",
        "customer": {"name": "Jane Doe", "email": "jane@example.com"},
    })

    assert response.status_code == 201, response.text
    assert response.json()["reservation"]["partySize"] == 3
    assert response.json()["reservation"]["localDatetime"] == f"{day.isoformat()}T18:30"


async def test_restaurant_name_and_city_match_ignoring_case(org, booking_request):
    response = await org.agent.post(BOOK, json=booking_request(restaurant="golden GATE grill", city="SAN FRANCISCO"))

    assert response.status_code == 201, response.text
    assert response.json()["reservation"]["restaurantName"] == "Golden Gate Grill"
    assert response.json()["reservation"]["city"] == "San Francisco"


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(("change", "field"), [
    (lambda b: _without(b, "restaurantName"), "restaurantName"),
    (lambda b: {**b, "partySize": 0}, "partySize"),
    (lambda b: {**b, "partySize": "four"}, "partySize"),
    (lambda b: {**b, "partySize": 101}, "partySize"),
    (lambda b: {**b, "datetime": "next friday at seven"}, "datetime"),
    (lambda b: {**b, "customer": {"email": "jane@example.com"}}, "customer.name"),
    (lambda b: {**b, "customer": {"name": "Jane Doe", "email": "jane-at-example"}}, "customer.email"),
], ids=["missing-restaurant", "party-zero", "party-not-a-number", "party-101", "bad-datetime",
        "missing-customer-name", "bad-email"])
async def test_invalid_field_is_400_naming_the_field(org, booking_request, change, field):
    response = await org.agent.post(BOOK, json=change(booking_request()))

    assert_invalid(response, field)


async def test_body_that_is_not_json_is_invalid_request(org):
    response = await org.agent.post(BOOK, content=b'{"restaurantName": "Golden', headers={"Content-Type": "application/json"})

    assert_invalid(response, "body")


async def test_empty_body_is_invalid_request(org):
    response = await org.agent.post(BOOK)

    assert_invalid(response, "body")


async def test_time_in_the_past_is_invalid_request(org, booking_request):
    response = await org.agent.post(BOOK, json=booking_request(datetime="2020-06-01T19:00:00"))

    assert_invalid(response, "datetime")


@pytest.mark.parametrize("value", ["9999-12-31T19:00:00", "0001-01-01T00:00:00+14:00"], ids=["year-9999", "year-1"])
async def test_time_outside_representable_dates_is_invalid_request(org, booking_request, value):
    response = await org.agent.post(BOOK, json=booking_request(datetime=value))

    assert_invalid(response, "datetime")


@pytest.mark.parametrize("value", ["9999-06-01T19:00:00", f"{date.today() + timedelta(days=740)}T19:00:00"],
                         ids=["year-9999", "beyond-two-years"])
async def test_time_beyond_the_booking_horizon_is_invalid_request(org, booking_request, value):
    response = await org.agent.post(BOOK, json=booking_request(datetime=value))

    assert_invalid(response, "datetime")
    assert "730 days ahead" in response.json()["error"]["message"]


@pytest.mark.parametrize(("restaurant", "city"), [
    ("Nowhere Diner", "San Francisco"),
    ("Golden Gate Grill", "New York"),
    ("Golden Gate", "San Francisco"),
], ids=["unknown-name", "wrong-city", "partial-name"])
async def test_unknown_restaurant_is_not_found(org, booking_request, restaurant, city):
    response = await org.agent.post(BOOK, json=booking_request(restaurant=restaurant, city=city))

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(("restaurant", "city", "party_size"), [
    ("Golden Gate Grill", "San Francisco", 11),
    ("Le Bernardin", "New York", 7),
])
async def test_party_larger_than_the_venue_seats_is_capacity_exceeded(org, booking_request, restaurant, city,
                                                                       party_size):
    response = await org.agent.post(BOOK, json=booking_request("19:00", party_size, restaurant=restaurant, city=city))

    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "CAPACITY_EXCEEDED"
    assert str(party_size) in error["message"]


@pytest.mark.parametrize(("time", "nearest"), [
    ("08:00", ["10:00", "10:15", "10:30"]),
    ("23:00", ["22:45", "22:30", "22:15"]),
    ("19:07", ["19:00", "19:15", "18:45"]),
], ids=["before-opening", "at-closing", "between-slots"])
async def test_time_the_venue_does_not_seat_is_refused_with_nearest_times(org, booking_request, time, nearest):
    response = await org.agent.post(BOOK, json=booking_request(time))

    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "CAPACITY_EXCEEDED"
    assert error["details"]["nearestAvailableTimes"] == nearest


async def test_closed_weekday_is_refused_with_times_on_the_next_open_day(org, day: date, booking_request):
    monday = day + timedelta(days=(7 - day.weekday()) % 7)  # Momofuku Ko is closed on Mondays (weekday 0)
    body = booking_request(restaurant="Momofuku Ko", city="New York", datetime=f"{monday.isoformat()}T19:00:00")

    response = await org.agent.post(BOOK, json=body)

    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "CAPACITY_EXCEEDED"
    assert "Monday" in error["message"]
    tuesday = (monday + timedelta(days=1)).isoformat()
    assert error["details"]["nearestAvailableTimes"][0] == f"{tuesday}T19:00"
    assert all(t.startswith(f"{tuesday}T") for t in error["details"]["nearestAvailableTimes"])


async def test_refused_requests_write_nothing(server, org, booking_request, book):
    refused = [
        booking_request("20:00", 11),                                   # 409: larger than the venue seats
        {**booking_request("20:00"), "partySize": "four"},              # 400: not a number
        {**booking_request("20:00"), "customer": {"email": "a@b.co"}},  # 400: no customer name
        booking_request("20:00", restaurant="Nowhere Diner"),           # 404
        booking_request(datetime="2020-06-01T20:00:00"),                # 400: in the past
    ]
    for body in refused:
        response = await org.agent.post(BOOK, json=body)
        assert response.status_code in (400, 404, 409), response.text

    assert await transactions_of(server, org.name) == 0
    for _ in range(3):  # the slot's 30 covers are all still free
        await book("20:00", 10)
    full = await org.agent.post(BOOK, json=booking_request("20:00", 1))
    assert full.status_code == 409, full.text
    assert full.json()["error"]["code"] == "CAPACITY_EXCEEDED"
    assert await transactions_of(server, org.name) == 3
