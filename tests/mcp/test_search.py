"""search_availability: what is bookable near a time, from the same providers bookings and jobs use."""

from datetime import date, datetime

from tests.conftest import Org
from tests.mcp.conftest import Connect, error, ok


def minutes(start: str) -> int:
    moment = datetime.fromisoformat(start)
    return moment.hour * 60 + moment.minute


async def test_offers_near_a_time_come_nearest_first_and_one_can_be_booked(
    mcp: Connect, org: Org, day: date
) -> None:
    async with mcp(org.agent_key) as session:
        found = ok(await session.call_tool("search_availability", {
            "scenario": "restaurant", "venue": "Golden Gate Grill", "city": "San Francisco",
            "date": day.isoformat(), "time": "19:05", "quantity": 2, "limit": 10,
        }))
        assert found["count"] == len(found["offers"]) > 0
        distances = [abs(minutes(o["start"]) - (19 * 60 + 5)) for o in found["offers"]]
        assert distances == sorted(distances)
        offer = found["offers"][0]
        assert offer["venueName"] == "Golden Gate Grill" and offer["city"] == "San Francisco"
        assert offer["start"].startswith(day.isoformat())
        assert offer["quantity"] == 2 and offer["remaining"] >= 2
        assert offer["providerId"]
        booked = ok(await session.call_tool("book_reservation", {
            "restaurant_name": offer["venueName"], "city": offer["city"], "party_size": offer["quantity"],
            "datetime": offer["start"], "customer": {"name": "Jane Doe"},
        }))
    assert booked["status"] == "confirmed"
    assert booked["reservation"]["localDatetime"] == offer["start"]


async def test_party_size_is_accepted_for_quantity(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        found = ok(await session.call_tool("search_availability", {
            "restaurant_name": "Zuni Cafe", "city": "San Francisco", "date": day.isoformat(), "party_size": 4}))
    assert found["offers"] and all(o["quantity"] == 4 for o in found["offers"])


async def test_unknown_venue_is_not_found(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        failure = error(await session.call_tool("search_availability", {
            "venue": "Nowhere Diner", "city": "San Francisco", "date": day.isoformat(), "quantity": 2}))
    assert failure["code"] == "NOT_FOUND"


async def test_a_misspelt_venue_is_not_found_with_the_nearest_names(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        failure = error(await session.call_tool("search_availability", {
            "venue": "Le Bernadin", "city": "New York", "date": day.isoformat(), "quantity": 2}))
        accented = ok(await session.call_tool("search_availability", {
            "venue": "L’ARPEGE", "city": "paris", "date": day.isoformat(), "quantity": 2}))
    assert failure["code"] == "NOT_FOUND" and "Did you mean Le Bernardin?" in failure["message"]
    assert failure["details"] == {"suggestions": ["Le Bernardin"]}
    assert {o["venueName"] for o in accented["offers"]} <= {"L'Arpège"}


async def test_what_the_scenario_needs_is_required(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        no_city = error(await session.call_tool("search_availability", {
            "venue": "Golden Gate Grill", "date": day.isoformat(), "quantity": 2}))
        no_route = error(await session.call_tool("search_availability", {
            "scenario": "flight", "date": day.isoformat(), "quantity": 1}))
    assert no_city["code"] == "INVALID_REQUEST" and no_city["details"][0]["field"] == "city"
    assert no_route["code"] == "INVALID_REQUEST"
    assert {d["field"] for d in no_route["details"]} == {"origin", "dest"}
