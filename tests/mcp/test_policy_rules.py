"""CUSTOM policy rules over MCP: book_reservation answers a rule that fails on the booking with the
same code and message as REST."""

from datetime import date

from tests.conftest import Org
from tests.mcp.conftest import Connect, error
from tests.mcp.test_reservations import BOOK, rest_booking


async def test_a_rule_failing_on_the_booking_is_the_same_policy_violation_over_mcp(
    mcp: Connect, org: Org, day: date
) -> None:
    response = await org.admin.post("/api/v1/policies", json={
        "name": "Fragile", "type": "CUSTOM", "config": {"rule": "100 / (request.partySize - 2) > 1000"}})
    assert response.status_code == 201, response.text
    over_rest = await org.agent.post(BOOK, json=rest_booking(day, "17:00", 2))
    async with mcp(org.agent_key) as session:
        over_mcp = error(await session.call_tool("book_reservation", rest_booking(day, "17:15", 2)))
    assert over_rest.json()["error"]["code"] == over_mcp["code"] == "POLICY_VIOLATION"
    assert over_rest.json()["error"]["message"] == over_mcp["message"]
    assert "could not be evaluated" in over_mcp["message"] and "divide by zero" in over_mcp["message"]
