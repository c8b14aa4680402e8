"""A job books what was asked, or says why not: dates, provider ids, size limits, lost races and fallbacks.

Le Bernardin (New York) seats at most 6 per booking at both restaurant providers; Alinea
(Chicago) seats 8 covers every 30 minutes from 17:00 and only sandbox-tables sells it.
Limits and the booking horizon come from errand.kit.limits.
"""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.api.execution.support import (
    JOBS, activity, fallbacks, flight, hotel, of_type, one, restaurant, run, run_all, types,
)
from tests.conftest import Org

STAY_PUT = {"allowVenueSwitch": False}


def today() -> date:
    return datetime.now(UTC).date()


def assert_invalid(response: Any, *names: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request", error
    for name in names:
        assert name in error["message"], (name, error["message"])
    return error


PAST_AND_FAR = {
    "two-days-ago": (lambda: today() - timedelta(days=2), "must not be in the past"),
    "year-1": (lambda: date(1, 1, 1), "must not be in the past"),
    "beyond-two-years": (lambda: today() + timedelta(days=731), "at most 730 days ahead"),
    "year-9999": (lambda: date(9999, 12, 30), "at most 730 days ahead"),
}


def dated(body: dict[str, Any], field: str, day: date) -> dict[str, Any]:
    """``body`` with its params' ``field`` set to ``day``."""
    body["request"]["params"][field] = str(day)
    return body


SOON = date(2027, 6, 1)
BY_SCENARIO = {
    "restaurant-date": (lambda d: dated(restaurant(SOON), "date", d), "request.params.date"),
    "hotel-checkin": (lambda d: dated(hotel(SOON), "checkin", d), "request.params.checkin"),
    "flight-date": (lambda d: dated(flight(SOON), "date", d), "request.params.date"),
    "flight-return_date": (lambda d: dated(flight(today()), "return_date", d), "request.params.return_date"),
    "activity-event_date": (lambda d: dated(activity(SOON), "event_date", d), "request.params.event_date"),
}


# A return two days ago is before the outbound date too: refused for that reason, tested elsewhere.
CASES = [(where, when) for where in BY_SCENARIO for when in PAST_AND_FAR
         if (where, when) != ("flight-return_date", "two-days-ago")]


@pytest.mark.parametrize(("where", "when"), CASES, ids=[f"{a}-{b}" for a, b in CASES])
async def test_a_past_or_far_future_date_is_400_naming_the_field(org: Org, where: str, when: str) -> None:
    day, problem = PAST_AND_FAR[when]
    build, field = BY_SCENARIO[where]

    error = assert_invalid(await org.agent.post(JOBS, json=build(day())), field, problem)

    assert {"path": field, "message": error["details"][0]["message"]} in error["details"]


async def test_yesterday_in_utc_is_still_today_somewhere_and_is_accepted(org: Org) -> None:
    response = await org.agent.post(JOBS, json=restaurant(today() - timedelta(days=1)))

    assert response.status_code == 202, response.text


@pytest.mark.parametrize("field", ["allowedProviders", "blockedProviders"])
async def test_an_unknown_provider_id_is_400_naming_it(org: Org, day: date, field: str) -> None:
    response = await org.agent.post(JOBS, json=restaurant(day, consent={field: ["sandbox-tables", "sandbox-tabels"]}))

    error = assert_invalid(response, "'sandbox-tabels'", "sandbox-tables")
    assert error["details"] == [{"path": f"consent.{field}.1", "message": "unknown provider id 'sandbox-tabels'"}]


LIMITS = [
    (lambda d: restaurant(d, covers=51), "request.params.covers",
     "must be at most 50 (the party size limit per booking)"),
    (lambda d: hotel(d, adults=11), "request.params.adults",
     "must be at most 10 (the adults per room limit per booking)"),
    (lambda d: flight(d, passengers=10), "request.params.passengers",
     "must be at most 9 (the passengers limit per booking)"),
    (lambda d: activity(d, tickets=21), "request.params.num_tickets",
     "must be at most 20 (the tickets limit per booking)"),
]


@pytest.mark.parametrize(("build", "field", "message"), LIMITS, ids=["covers", "adults", "passengers", "tickets"])
async def test_a_size_over_the_limit_is_400_naming_the_limit(org: Org, day: date, build: Any, field: str,
                                                             message: str) -> None:
    error = assert_invalid(await org.agent.post(JOBS, json=build(day)), f"{field}: {message}")

    assert {"path": field, "message": message} in error["details"]


async def test_a_party_over_the_venues_own_maximum_says_so_and_every_provider_left_has_its_fallback(
    org: Org, day: date, api_only: dict[str, Any]
) -> None:
    done, events = await run(org.agent, restaurant(day, "Le Bernardin", covers=8, consent={**STAY_PUT, **api_only}))

    assert done["status"] == "no_availability", done
    assert "party of 8; Le Bernardin seats at most 6 per booking" in done["summary"], done
    assert "party of 8; Le Bernardin seats at most 6 per booking" in one(events, "job_failed")["message"]
    # Both providers were left, the last one too, each with its reason.
    assert fallbacks(events) == [("sandbox-tables", "sandbox-dine", "party_too_large"),
                                 ("sandbox-dine", None, "no_offers")]
    assert types(events).index("provider_fallback") < types(events).index("job_failed")


async def test_the_last_provider_before_a_venue_switch_has_its_fallback(org: Org, day: date) -> None:
    done, events = await run(org.agent, restaurant(day, "Via Carota", cuisine="Italian",
                                                   consent={"allowedProviders": ["sandbox-tables"]}))

    assert done["status"] == "paused_payment", done
    assert fallbacks(events) == [("sandbox-tables", None, "venue_not_served")]
    assert types(events).index("provider_fallback") < types(events).index("venue_switched")


async def test_jobs_racing_for_one_slot_take_the_next_slot_within_consent_instead_of_failing(
    org: Org, day: date
) -> None:
    # Alinea seats 8 covers a slot: four parties of two at 19:00, twenty ask for it.
    consent = {"allowedProviders": ["sandbox-tables"], "maxTimeAdjustmentMinutes": 90, **STAY_PUT}
    results = await run_all(org.agent, [restaurant(day, "Alinea", "19:00", city="Chicago", consent=consent)
                                        for _ in range(20)])

    statuses = Counter(done["status"] for done, _ in results)
    assert statuses == {"paused_payment": 20}, [(d["status"], d["summary"]) for d, _ in results]
    per_slot = Counter(done["result"]["start"] for done, _ in results)
    assert per_slot[f"{day}T19:00"] == 4 and max(per_slot.values()) == 4, per_slot
    for done, _ in results:
        moved = abs(datetime.fromisoformat(done["result"]["start"]) - datetime.fromisoformat(f"{day}T19:00"))
        assert moved <= timedelta(minutes=90), done["result"]
    retaken = [e for _, events in results for e in of_type(events, "time_adjusted")
               if e.get("reason") == "slot taken at checkout"]
    assert retaken, "no job lost its slot at checkout: the race did not happen"
    for event in retaken:
        assert "was taken at checkout" in event["message"] and event["fromTime"] != event["toTime"]
    for done, events in results:
        if any(e.get("reason") == "slot taken at checkout" for e in of_type(events, "time_adjusted")):
            assert "time_adjusted" in [d["type"] for d in done["decisionLog"]]
            assert fallbacks(events) == []
