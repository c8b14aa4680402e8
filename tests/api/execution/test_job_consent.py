"""The user's consent steers the autopilot: time shifts, venue switches, retries, providers, budgets, duration.

Le Bernardin seats parties every 30 minutes from 17:00 to 22:00 (225 USD a head) at both
restaurant providers; Balthazar fails twice at sandbox-tables before it answers (per
search body and per checkout key); Via Carota is not sold by sandbox-tables. New York →
San Francisco flies UA15 08:00 (230), AA116 08:20 (241), UA126 08:35 (180) and UA107
11:35 (253), economy fares in USD.
"""

from datetime import date
from typing import Any

import httpx

from tests.api.execution.support import (
    SLOW_SECONDS, activity, fallbacks, flight, hotel, of_type, one, restaurant, run, run_all, tried, types,
)
from tests.conftest import Org

STAY_PUT = {"allowVenueSwitch": False}


async def test_time_adjustment_takes_the_nearest_slot_only_when_allowed(
    org: Org, day: date, api_only: dict[str, Any]
) -> None:
    (shifted, shifted_events), (refused, refused_events) = await run_all(org.agent, [
        restaurant(day, "Le Bernardin", "19:10"),
        restaurant(day, "Le Bernardin", "19:10", consent={"allowTimeAdjustment": False, **STAY_PUT, **api_only}),
    ])
    assert shifted["status"] == "paused_payment", shifted
    assert shifted["result"]["start"] == f"{day}T19:00"
    moved = one(shifted_events, "time_adjusted")
    assert (moved["fromTime"], moved["toTime"]) == ("19:10", "19:00")
    assert "time_adjusted" in [d["type"] for d in shifted["decisionLog"]]
    assert refused["status"] == "no_availability", refused
    assert "time_adjusted" not in types(refused_events)
    assert {reason for _, _, reason in fallbacks(refused_events)} == {"no_time_in_window"}


async def test_max_time_adjustment_bounds_the_shift(org: Org, day: date, api_only: dict[str, Any]) -> None:
    # Le Bernardin opens at 17:00: one hour after the asked 16:00.
    (near, near_events), (far, far_events) = await run_all(org.agent, [
        restaurant(day, "Le Bernardin", "16:00", consent={"maxTimeAdjustmentMinutes": 90}),
        restaurant(day, "Le Bernardin", "16:00", consent={"maxTimeAdjustmentMinutes": 30, **STAY_PUT, **api_only}),
    ])
    assert near["status"] == "paused_payment", near
    moved = one(near_events, "time_adjusted")
    assert (moved["fromTime"], moved["toTime"]) == ("16:00", "17:00")
    assert near["result"]["start"] == f"{day}T17:00"
    assert far["status"] == "no_availability", far
    assert "time_adjusted" not in types(far_events)


async def test_a_venue_no_allowed_provider_sells_is_switched_only_when_allowed(org: Org, day: date) -> None:
    tables_only = {"allowedProviders": ["sandbox-tables"]}
    (switched, events), (kept, kept_events) = await run_all(org.agent, [
        restaurant(day, "Via Carota", "19:00", cuisine="Italian", consent=tables_only),
        restaurant(day, "Via Carota", "19:00", cuisine="Italian", consent={**tables_only, **STAY_PUT}),
    ])
    assert switched["status"] == "paused_payment", switched
    moved = one(events, "venue_switched")
    assert moved["fromVenue"] == "Via Carota" and moved["toVenue"] == switched["result"]["venueName"] != "Via Carota"
    assert moved["toVenue"] == "Carbone"  # the other Italian place, not merely the cheapest one
    assert moved["why"] == "same cuisine" and moved["providerId"] == "sandbox-tables"
    assert switched["result"]["start"] == f"{day}T19:00"  # a switch keeps the time
    assert switched["usedFallback"] is True and switched["providerId"] == "sandbox-tables"
    assert "venue_switched" in [d["type"] for d in switched["decisionLog"]]
    assert kept["status"] == "no_availability", kept
    assert fallbacks(kept_events) == [("sandbox-tables", None, "venue_not_served")]  # the one provider left
    assert "venue_switched" not in types(kept_events)


async def test_a_venue_switch_keeps_to_the_budget(org: Org, day: date, api_only: dict[str, Any]) -> None:
    # The Plaza's cheapest room is 845 a night; the similar hotels sandbox-stays sells for
    # less are behind walls except The Standard High Line (364), whose checkout is flaky.
    done, events = await run(org.agent, hotel(day, "The Plaza", budget_max_per_night=500, consent=api_only))
    assert done["status"] == "paused_payment", done
    assert done["result"]["venueName"] == "The Standard High Line"
    assert done["result"]["totalPriceUsd"] <= 500
    assert {reason for _, _, reason in fallbacks(events)} == {"over_budget"}
    moved = one(events, "venue_switched")
    assert (moved["fromVenue"], moved["toVenue"]) == ("The Plaza", "The Standard High Line")
    assert [e["providerId"] for e in of_type(events, "step_attempt")] == ["sandbox-stays"] * 2


async def test_an_event_nobody_sells_is_switched_only_for_one_like_the_request(org: Org, day: date) -> None:
    # The request states a budget (70 a ticket): another event that night within it is like what was asked.
    # Stating nothing, the switch would have to match the Louvre tour itself, which no allowed provider
    # can describe (sandbox-tickets does not sell it): no switch, rather than a cabaret nobody asked for.
    tickets_only = {"allowedProviders": ["sandbox-tickets"]}
    (done, events), (kept, kept_events) = await run_all(org.agent, [
        activity(day, "Louvre Night Tour", city="Paris", budget_max_per_ticket=70, consent=tickets_only),
        activity(day, "Louvre Night Tour", city="Paris", consent=tickets_only),
    ])
    assert done["status"] == "paused_payment", done
    assert done["result"]["city"] == "Paris" and done["result"]["venueName"] != "Louvre Night Tour"
    assert done["result"]["totalPriceUsd"] <= 2 * 70
    # One provider: it is left (before the switch) with nothing to fall back to.
    assert fallbacks(events) == [("sandbox-tickets", None, "venue_not_served")]
    moved = one(events, "venue_switched")
    assert moved["toVenue"] == done["result"]["venueName"] and moved["why"] == "within budget"
    assert moved["reason"] == "venue_not_served"
    assert kept["status"] == "no_availability", kept
    assert "venue_switched" not in types(kept_events) and "paused_payment" not in types(kept_events)


async def test_max_retries_bounds_the_retries_of_a_flaky_provider(org: Org, day: date) -> None:
    # Different times: the flaky count is per search body.
    (patient, patient_events), (hasty, hasty_events) = await run_all(org.agent, [
        restaurant(day, "Balthazar", "19:00", consent={"maxRetries": 3}),
        restaurant(day, "Balthazar", "19:15", consent={"maxRetries": 0}),
    ])
    assert patient["status"] == "paused_payment", patient
    assert (patient["providerId"], patient["usedFallback"], patient["attemptCount"]) == ("sandbox-tables", False, 1)
    attempts = of_type(patient_events, "step_attempt")
    assert [(e["providerId"], e["attempt"], e["error"]) for e in attempts] == [
        ("sandbox-tables", 1, "transient_error"), ("sandbox-tables", 2, "transient_error"),  # search
        ("sandbox-tables", 1, "transient_error"), ("sandbox-tables", 2, "transient_error"),  # checkout
    ]
    assert "step_attempt" in [d["type"] for d in patient["decisionLog"]]
    assert hasty["status"] == "completed", hasty
    assert hasty["providerId"] == "sandbox-dine" and hasty["usedFallback"] is True
    assert len(of_type(hasty_events, "step_attempt")) == 1
    assert fallbacks(hasty_events) == [("sandbox-tables", "sandbox-dine", "transient_error")]


async def test_allowed_and_blocked_providers_shape_the_chain(org: Org, day: date) -> None:
    cases = [
        (restaurant(day, "Le Bernardin", "19:00", consent={"allowedProviders": ["sandbox-dine"]}),
         "completed", ["sandbox-dine"]),
        (restaurant(day, "Le Bernardin", "19:30", consent={"blockedProviders": ["sandbox-tables"]}),
         "completed", ["sandbox-dine"]),
        (restaurant(day, "Gramercy Tavern", "19:00", consent={  # blocked beats allowed
            "allowedProviders": ["sandbox-tables", "sandbox-dine"], "blockedProviders": ["sandbox-dine"]}),
         "needs_login", ["sandbox-tables"]),
        (hotel(day, "The Plaza", consent={"allowedProviders": ["sandbox-rooms", "sandbox-air"]}),
         "completed", ["sandbox-rooms"]),
        (flight(day, consent={"allowedProviders": ["sandbox-fares"]}), "paused_payment", ["sandbox-fares"]),
    ]
    results = await run_all(org.agent, [body for body, _, _ in cases])
    for (body, status, chain), (done, events) in zip(cases, results, strict=True):
        what = (body["request"]["params"], body["consent"])
        assert done["status"] == status, (what, done)
        assert tried(events) == chain, what
        assert done["attemptCount"] == len(chain) and done["usedFallback"] is False
    nobody, _ = await run(org.agent, restaurant(day, consent={"allowedProviders": ["sandbox-air"]}))
    assert nobody["status"] == "error" and "No provider" in nobody["summary"], nobody


async def test_budgets_choose_what_fits_and_refuse_what_does_not(
    org: Org, day: date, api_only: dict[str, Any]
) -> None:
    cases = [
        (restaurant(day, "Le Bernardin", budget_per_person=225), "paused_payment", 2 * 225),
        (restaurant(day, "Le Bernardin", "20:00", budget_per_person=224.99, consent={**STAY_PUT, **api_only}),
         "no_availability", None),
        (hotel(day, "The Plaza", budget_max_per_night=900), "paused_payment", 845),
        (flight(day, targetPrice=200), "paused_payment", 180),
        (flight(day, targetPrice=179, consent=api_only), "no_availability", None),
        (activity(day, "Hamilton", tickets=1, budget_max_per_ticket=130, seat_type="Mezzanine"), "paused_payment", 120),
    ]
    results = await run_all(org.agent, [body for body, _, _ in cases])
    for (body, status, total), (done, events) in zip(cases, results, strict=True):
        what = body["request"]["params"]
        assert done["status"] == status, (what, done)
        if total is not None:
            assert done["result"]["totalPriceUsd"] == total, (what, done["result"])
        else:
            assert {reason for _, _, reason in fallbacks(events)} <= {"over_budget"}
            assert "paused_payment" not in types(events)


async def test_flight_preferences_pick_the_cabin_flight_airline_and_time(
    org: Org, day: date, api_only: dict[str, Any]
) -> None:
    cases = [
        (flight(day, cabin_class="business"), "paused_payment", ("UA126", "business")),
        (flight(day, targetFlightNumber="UA107"), "paused_payment", ("UA107", "economy")),
        (flight(day, targetAirline="AA"), "paused_payment", ("AA116", "economy")),
        (flight(day, targetAirline="American Airlines", cabin_class="first"), "paused_payment", ("AA116", "first")),
        (flight(day, targetDepartureTime="10:00"), "paused_payment", ("UA126", "economy")),
        (flight(day, targetDepartureTime="10:00", consent={"allowTimeAdjustment": False, **api_only}),
         "no_availability", None),
    ]
    results = await run_all(org.agent, [body for body, _, _ in cases])
    for (body, status, picked), (done, events) in zip(cases, results, strict=True):
        what = body["request"]["params"]
        assert done["status"] == status, (what, done)
        if picked is not None:
            flight_number, cabin = picked
            assert done["result"]["venueId"] == flight_number, (what, done["result"])
            assert cabin.replace("_", " ") in done["result"]["unit"].lower(), (what, done["result"])
    adjusted = one(results[4][1], "time_adjusted")
    assert (adjusted["fromTime"], adjusted["toTime"]) == ("10:00", "08:35")
    assert results[4][0]["result"]["start"] == f"{day}T08:35"


async def test_hotel_room_and_event_seat_preferences_are_honoured(org: Org, day: date) -> None:
    (suite, _), (stalls, _) = await run_all(org.agent, [
        hotel(day, "The Plaza", room_preference="Suite"), activity(day, "Hamilton", seat_type="Orchestra"),
    ])
    assert suite["status"] == "paused_payment" and suite["result"]["unit"] == "Suite", suite
    assert stalls["status"] == "paused_payment" and stalls["result"]["unit"] == "Orchestra", stalls


async def test_max_job_duration_ends_a_slow_job_as_an_error(org: Org, day: date, slow_url: str) -> None:
    # Search then checkout at a provider answering in SLOW_SECONDS each outlasts the 5 s allowed.
    assert 2 * SLOW_SECONDS > 5
    async with httpx.AsyncClient(base_url=slow_url, timeout=30,
                                 headers={"Authorization": f"Bearer {org.agent_key}"}) as slow:
        done, events = await run(slow, restaurant(day, "Le Bernardin", consent={
            "allowedProviders": ["sandbox-tables"], "maxJobDurationSeconds": 5}))
    assert done["status"] == "error", done
    assert "maxJobDurationSeconds" in done["error"] and "5" in done["error"]
    assert one(events, "job_failed")["status"] == "error"
    assert "paused_payment" not in types(events)
