"""book_reservation, modify_reservation, cancel_reservation through the SDK's client, and their
equivalence with REST: one transaction engine, one idempotency scope, one audit trail."""

import uuid
from datetime import date
from typing import Any

from tests.conftest import Org, Server, mint_key
from tests.mcp.conftest import Connect, error, ok

BOOK = "/api/v1/agent/restaurant/book"
CANCEL = "/api/v1/agent/restaurant/cancel"


def rest_booking(day: date, time: str = "19:00", party_size: int = 2, **overrides: Any) -> dict[str, Any]:
    """A Golden Gate Grill booking in the REST body's (camelCase) shape, at a venue-local time."""
    return {
        "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": party_size,
        "datetime": f"{day.isoformat()}T{time}:00", "customer": {"name": "Jane Doe", "email": "jane@example.com"},
        **overrides,
    }


def snake_booking(day: date, time: str = "19:00", party_size: int = 2) -> dict[str, Any]:
    return {
        "restaurant_name": "Golden Gate Grill", "city": "San Francisco", "party_size": party_size,
        "datetime": f"{day.isoformat()}T{time}:00", "customer": {"name": "Jane Doe", "email": "jane@example.com"},
    }


async def test_booking_over_mcp_is_the_transaction_rest_reads_with_its_audit_trail(
    mcp: Connect, org: Org, day: date
) -> None:
    async with mcp(org.agent_key) as session:
        booked = ok(await session.call_tool("book_reservation", rest_booking(day)))
    assert booked["status"] == "confirmed"
    assert booked["replayed"] is False
    assert booked["reservation"]["partySize"] == 2
    assert booked["reservation"]["reservationId"]
    assert booked["amountUsd"] == 130.0
    response = await org.agent.get(f"/api/v1/transactions/{booked['transactionId']}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["status"] == "confirmed"
    assert [e["type"] for e in detail["events"]][:2] == ["transaction.created", "transaction.confirmed"]
    assert detail["events"][0]["actor"].startswith("api_key:ar_live_")


async def test_snake_case_arguments_book_the_same(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        booked = ok(await session.call_tool("book_reservation", snake_booking(day, "12:00", 3)))
    assert booked["status"] == "confirmed"
    assert booked["reservation"]["localDatetime"] == f"{day.isoformat()}T12:00"


async def test_full_slot_is_capacity_exceeded_with_the_nearest_times(mcp: Connect, org: Org, day: date) -> None:
    for _ in range(3):  # Golden Gate Grill seats 30 covers per slot
        response = await org.agent.post(BOOK, json=rest_booking(day, "20:00", 10))
        assert response.status_code == 201, response.text
    async with mcp(org.agent_key) as session:
        result = await session.call_tool("book_reservation", rest_booking(day, "20:00", 2))
    failure = error(result)
    assert failure["code"] == "CAPACITY_EXCEEDED"
    nearest = failure["details"]["nearestAvailableTimes"]
    assert nearest and "20:00" not in nearest
    assert all(len(t) == 5 and t[2] == ":" for t in nearest), nearest


async def test_unknown_restaurant_is_not_found(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        result = await session.call_tool("book_reservation", rest_booking(day, restaurantName="Nowhere Diner"))
    failure = error(result)
    assert failure["code"] == "NOT_FOUND"
    assert "Nowhere Diner" in failure["message"]


async def test_a_misspelt_restaurant_is_not_found_with_the_nearest_names(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        result = await session.call_tool("book_reservation", rest_booking(
            day, restaurantName="Le Bernadin", city="New York"))
    failure = error(result)
    assert failure["code"] == "NOT_FOUND" and "Did you mean Le Bernardin?" in failure["message"]
    assert failure["details"] == {"suggestions": ["Le Bernardin"]}


async def test_arguments_outside_the_schema_are_invalid_request_naming_the_field(
    mcp: Connect, org: Org, day: date
) -> None:
    async with mcp(org.agent_key) as session:
        bad_size = error(await session.call_tool("book_reservation", rest_booking(day, partySize=0)))
        no_time = error(await session.call_tool("book_reservation", {
            k: v for k, v in rest_booking(day).items() if k != "datetime"}))
        past = error(await session.call_tool("book_reservation", rest_booking(day, datetime="2020-01-01T19:00:00")))
    assert bad_size["code"] == "INVALID_REQUEST"
    assert any("party_size" in d["field"] or "partySize" in d["field"] for d in bad_size["details"]), bad_size
    assert no_time["code"] == "INVALID_REQUEST" and no_time["details"][0]["field"] == "datetime"
    assert past["code"] == "INVALID_REQUEST" and "future" in past["message"]


async def test_generic_shape_that_names_no_table_service_is_explained(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        result = await session.call_tool("book_reservation", {
            "provider": "Golden Gate Grill", "city": "San Francisco", "service_type": "massage",
            "customer": {"name": "Jane Doe"}, "time_slot": {"start": f"{day}T19:00:00", "end": f"{day}T18:00:00"},
        })
    failure = error(result)
    assert failure["code"] == "INVALID_REQUEST"
    assert {d["field"] for d in failure["details"]} == {"service_type", "time_slot.end"}
    assert "provider is the restaurant's name" in failure["message"]


async def test_generic_shape_past_start_names_time_slot(mcp: Connect, org: Org) -> None:
    async with mcp(org.agent_key) as session:
        result = await session.call_tool("book_reservation", {
            "provider": "Golden Gate Grill", "city": "San Francisco", "customer": {"name": "Jane Doe"},
            "time_slot": {"start": "2020-03-20T10:00:00Z"},
        })
    failure = error(result)
    assert failure["code"] == "INVALID_REQUEST"
    assert failure["message"].startswith("time_slot.start:")
    assert failure["details"][0]["field"] == "time_slot.start"


async def test_replay_with_the_same_key_returns_the_same_transaction(mcp: Connect, org: Org, day: date) -> None:
    key = f"mcp-{uuid.uuid4()}"
    async with mcp(org.agent_key) as session:
        first = ok(await session.call_tool("book_reservation", {**rest_booking(day, "13:00"), "idempotency_key": key}))
        again = ok(await session.call_tool("book_reservation", {**rest_booking(day, "13:00"), "idempotency_key": key}))
        other = error(await session.call_tool("book_reservation",
                                              {**rest_booking(day, "13:15"), "idempotency_key": key}))
    assert first["replayed"] is False and again["replayed"] is True
    assert again["transactionId"] == first["transactionId"]
    assert again["reservation"] == first["reservation"]
    assert other["code"] == "IDEMPOTENCY_CONFLICT"


async def test_rest_booking_replayed_over_mcp_with_its_key_is_the_same_transaction(
    mcp: Connect, org: Org, day: date
) -> None:
    key = f"rest-{uuid.uuid4()}"
    response = await org.agent.post(BOOK, json=rest_booking(day, "13:30"), headers={"Idempotency-Key": key})
    assert response.status_code == 201, response.text
    async with mcp(org.agent_key) as session:
        replay = ok(await session.call_tool("book_reservation",
                                            {**snake_booking(day, "13:30"), "idempotency_key": key}))
    assert replay["replayed"] is True
    assert replay["transactionId"] == response.json()["transactionId"]


async def test_booked_over_mcp_and_cancelled_over_rest(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        booked = ok(await session.call_tool("book_reservation", rest_booking(day, "14:00")))
    response = await org.agent.post(CANCEL, json={"transaction_id": booked["transactionId"], "reason": "REST"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    async with mcp(org.agent_key) as session:
        again = error(await session.call_tool("cancel_reservation", {"transaction_id": booked["transactionId"]}))
    assert again["code"] == "INVALID_STATE"


async def test_booked_over_rest_and_cancelled_over_mcp(mcp: Connect, org: Org, day: date) -> None:
    response = await org.agent.post(BOOK, json=rest_booking(day, "14:15"))
    assert response.status_code == 201, response.text
    transaction_id = response.json()["transactionId"]
    async with mcp(org.agent_key) as session:
        cancelled = ok(await session.call_tool("cancel_reservation", {
            "transactionId": transaction_id, "reason": "Customer changed plans", "idempotency_key": "c-1"}))
        replay = ok(await session.call_tool("cancel_reservation", {
            "transactionId": transaction_id, "reason": "Customer changed plans", "idempotency_key": "c-1"}))
    assert cancelled["status"] == "cancelled" and cancelled["reservation"]["cancelledAt"]
    assert replay["replayed"] is True and replay["transactionId"] == transaction_id
    detail = (await org.agent.get(f"/api/v1/transactions/{transaction_id}")).json()
    assert detail["status"] == "cancelled"
    assert detail["cancelReason"] == "Customer changed plans"


async def test_cancelling_an_unknown_transaction_is_not_found(mcp: Connect, org: Org) -> None:
    async with mcp(org.agent_key) as session:
        failure = error(await session.call_tool("cancel_reservation", {"transaction_id": "txn_doesnotexist"}))
    assert failure["code"] == "NOT_FOUND"


async def test_another_organizations_transaction_is_not_found(mcp: Connect, org: Org, server: Server,
                                                              day: date) -> None:
    response = await org.agent.post(BOOK, json=rest_booking(day, "14:30"))
    transaction_id = response.json()["transactionId"]
    stranger = await mint_key(server, f"Stranger {uuid.uuid4().hex[:8]}")
    async with mcp(stranger) as session:
        failure = error(await session.call_tool("cancel_reservation", {"transaction_id": transaction_id}))
    assert failure["code"] == "NOT_FOUND"
    assert (await org.agent.get(f"/api/v1/transactions/{transaction_id}")).json()["status"] == "confirmed"


async def test_modify_in_the_rest_shape_and_in_the_generic_shape(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        booked = ok(await session.call_tool("book_reservation", rest_booking(day, "15:00")))
        bigger = ok(await session.call_tool("modify_reservation", {
            "transaction_id": booked["transactionId"], "updates": {"partySize": 4, "customer": {"name": "Jane Smith"}},
        }))
        moved = ok(await session.call_tool("modify_reservation", {
            "transactionId": booked["transactionId"], "time_slot": {"start": f"{day}T15:30:00"},
            "idempotency_key": f"move-{uuid.uuid4()}",
        }))
    assert bigger["status"] == "modified" and bigger["reservation"]["partySize"] == 4
    assert moved["status"] == "modified" and moved["reservation"]["localDatetime"] == f"{day.isoformat()}T15:30"
    assert moved["reservation"]["partySize"] == 4
    detail = (await org.agent.get(f"/api/v1/transactions/{booked['transactionId']}")).json()
    assert detail["customer"]["name"] == "Jane Smith"


async def test_modify_that_does_not_fit_is_capacity_exceeded_and_changes_nothing(
    mcp: Connect, org: Org, day: date
) -> None:
    async with mcp(org.agent_key) as session:
        booked = ok(await session.call_tool("book_reservation", rest_booking(day, "16:00")))
        failure = error(await session.call_tool("modify_reservation", {
            "transaction_id": booked["transactionId"], "party_size": 12}))
        nothing = error(await session.call_tool("modify_reservation", {"transaction_id": booked["transactionId"]}))
    assert failure["code"] == "CAPACITY_EXCEEDED"
    assert "nearestAvailableTimes" in failure["details"]
    assert nothing["code"] == "INVALID_REQUEST"
    detail = (await org.agent.get(f"/api/v1/transactions/{booked['transactionId']}")).json()
    assert detail["status"] == "confirmed" and detail["reservation"]["partySize"] == 2


async def test_organization_policies_apply_to_mcp_calls(mcp: Connect, org: Org, day: date) -> None:
    response = await org.admin.post("/api/v1/policies", json={
        "name": "Small parties only", "type": "SPENDING_LIMIT", "config": {"maxAmountUsd": 200}})
    assert response.status_code == 201, response.text
    async with mcp(org.agent_key) as session:
        denied = error(await session.call_tool("book_reservation", rest_booking(day, "17:00", 4)))
        allowed = ok(await session.call_tool("book_reservation", rest_booking(day, "17:00", 3)))
    assert denied["code"] == "POLICY_VIOLATION"
    assert "Small parties only" in denied["message"]
    assert allowed["status"] == "confirmed"


async def test_mcp_booking_replayed_over_rest_with_its_key_answers_the_same_body(
    mcp: Connect, org: Org, day: date
) -> None:
    key = f"same-{uuid.uuid4()}"
    async with mcp(org.agent_key) as session:
        over_mcp = ok(await session.call_tool("book_reservation",
                                              {**rest_booking(day, "21:00"), "idempotency_key": key}))
    response = await org.agent.post(BOOK, json=rest_booking(day, "21:00"), headers={"Idempotency-Key": key})
    assert response.status_code == 201 and response.headers["Idempotent-Replayed"] == "true"
    over_rest = response.json()
    assert over_rest["transactionId"] == over_mcp["transactionId"]
    assert over_rest["reservation"] == {k: v for k, v in over_mcp["reservation"].items() if v is not None}


async def test_a_replayed_error_says_replayed(mcp: Connect, org: Org) -> None:
    key = f"mcp-{uuid.uuid4()}"
    arguments = {"transaction_id": "txn_does_not_exist", "idempotency_key": key}
    async with mcp(org.agent_key) as session:
        first = error(await session.call_tool("cancel_reservation", arguments))
        again = error(await session.call_tool("cancel_reservation", arguments))
    assert first["code"] == again["code"] == "NOT_FOUND"
    assert "replayed" not in first
    assert again["replayed"] is True
