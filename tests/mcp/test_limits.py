"""Dates and sizes over MCP get the verdicts, in the same words, that REST and the job API give.

The limits (party size 50, adults 10, passengers 9, tickets 20) and the booking horizon
(730 days) come from errand.kit.limits.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Org
from tests.mcp.conftest import Connect, error
from tests.api.execution.support import restaurant_job

PARTY_LIMIT = "must be at most 50 (the party size limit per booking)"


def today() -> date:
    return datetime.now(UTC).date()


def search(day: date, **overrides: Any) -> dict[str, Any]:
    return {"scenario": "restaurant", "venue": "Golden Gate Grill", "city": "San Francisco",
            "date": day.isoformat(), "quantity": 2, **overrides}


DATES = {
    "past": (lambda: today() - timedelta(days=2), "must not be in the past"),
    "year-9999": (lambda: date(9999, 12, 30), "at most 730 days ahead"),
}


@pytest.mark.parametrize("when", DATES, ids=list(DATES))
async def test_search_for_a_past_or_far_date_is_invalid_request_not_an_empty_list(
    mcp: Connect, org: Org, when: str
) -> None:
    day, problem = DATES[when]
    async with mcp(org.agent_key) as session:
        failure = error(await session.call_tool("search_availability", search(day())))
        hotel = error(await session.call_tool("search_availability", search(
            date(2027, 6, 1), scenario="hotel", venue="The Plaza", city="New York", end_date=day().isoformat())))

    assert failure["code"] == "INVALID_REQUEST" and problem in failure["message"]
    assert [d["field"] for d in failure["details"]] == ["date"] and problem in failure["details"][0]["message"]
    assert hotel["code"] == "INVALID_REQUEST" and "end_date" in hotel["message"]


@pytest.mark.parametrize("when", DATES, ids=list(DATES))
async def test_a_job_for_a_past_or_far_date_is_invalid_request(mcp: Connect, org: Org, when: str) -> None:
    day, problem = DATES[when]
    async with mcp(org.agent_key) as session:
        failure = error(await session.call_tool("create_execution_job", restaurant_job(day())))

    assert failure["code"] == "INVALID_REQUEST"
    assert "request.params.date" in failure["message"] and problem in failure["message"]


async def test_a_job_naming_an_unknown_provider_is_invalid_request_naming_it(mcp: Connect, org: Org,
                                                                            day: date) -> None:
    async with mcp(org.agent_key) as session:
        failure = error(await session.call_tool("create_execution_job", {
            **restaurant_job(day), "consent": {"blockedProviders": ["no-such-provider"]}}))

    assert failure["code"] == "INVALID_REQUEST" and "'no-such-provider'" in failure["message"]


async def test_a_party_over_the_limit_is_refused_in_the_same_words_by_rest_mcp_and_jobs(
    mcp: Connect, org: Org, day: date
) -> None:
    rest = await org.agent.post("/api/v1/agent/restaurant/book", json={
        "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": 51,
        "datetime": f"{day}T19:00:00", "customer": {"name": "Jane Doe"}})
    job = await org.agent.post("/api/v1/execution-jobs", json={**restaurant_job(day), "request": {
        "scenario": "restaurant", "params": {**restaurant_job(day)["request"]["params"], "covers": 51}}})
    async with mcp(org.agent_key) as session:
        booked = error(await session.call_tool("book_reservation", {
            "restaurant_name": "Golden Gate Grill", "city": "San Francisco", "party_size": 51,
            "datetime": f"{day}T19:00:00", "customer": {"name": "Jane Doe"}}))
        searched = error(await session.call_tool("search_availability", search(day, quantity=51)))
        created = error(await session.call_tool("create_execution_job", {**restaurant_job(day), "request": {
            "scenario": "restaurant", "params": {**restaurant_job(day)["request"]["params"], "covers": 51}}}))

    assert rest.status_code == 400 and job.status_code == 400, (rest.text, job.text)
    messages = {
        "rest": rest.json()["error"]["message"], "jobs": job.json()["error"]["message"],
        "mcp book_reservation": booked["message"], "mcp search_availability": searched["message"],
        "mcp create_execution_job": created["message"],
    }
    for where, message in messages.items():
        assert PARTY_LIMIT in message, (where, message)
    assert {rest.json()["error"]["code"], booked["code"], searched["code"], created["code"]} == {"INVALID_REQUEST"}


@pytest.mark.parametrize(("scenario", "extra", "quantity", "limit"), [
    ("hotel", {"venue": "The Plaza", "city": "New York", "end_date": "2027-06-02"}, 11,
     "must be at most 10 (the adults per room limit per booking)"),
    ("flight", {"venue": None, "city": None, "origin": "New York", "dest": "San Francisco"}, 10,
     "must be at most 9 (the passengers limit per booking)"),
    ("activity", {"venue": "Hamilton", "city": "New York"}, 21, "must be at most 20 (the tickets limit per booking)"),
], ids=["adults", "passengers", "tickets"])
async def test_search_quantity_over_the_scenarios_limit_names_it(
    mcp: Connect, org: Org, scenario: str, extra: dict[str, Any], quantity: int, limit: str
) -> None:
    arguments = {k: v for k, v in search(date(2027, 6, 1), scenario=scenario, quantity=quantity, **extra).items()
                 if v is not None}
    async with mcp(org.agent_key) as session:
        failure = error(await session.call_tool("search_availability", arguments))

    assert failure["code"] == "INVALID_REQUEST"
    assert failure["details"] == [{"field": "quantity", "message": limit}]
