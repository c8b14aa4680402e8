"""A job books the venue that was asked for, a venue like it with the end user's say, or says why not.

Names are matched ignoring case, accents and apostrophe styles; a name no provider knows
ends the job ``no_availability`` with the nearest names and no booking anywhere; a venue
that exists but is full is switched only for one like it (what the request states, else
the original's cuisine and price band), and the switch stops at payment or asks a human
unless ``consent.allowAlternativeBooking``.

Paris, French: Septime 140 a head (Bastille, 20 covers a slot, parties up to 10), Frenchie
120, Le Train Bleu 110, Le Comptoir du Relais 70, L'Arpège 420 (closed on Mondays, sold by
sandbox-tables only); Chez Janou is Provencal (55).
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from tests.api.execution.support import (
    TERMINAL, activity, hotel, metrics, of_type, one, restaurant, run, run_all, types,
)
from tests.conftest import Org, Server
from tests.sandbox.api_support import server_credentials

BOOK = "/api/v1/agent/restaurant/book"
PROVIDERS = ("sandbox-tables", "sandbox-dine", "sandbox-stays", "sandbox-rooms", "sandbox-tickets")
ASKING = TERMINAL | {"awaiting_approval"}
FRENCH_NEAR_SEPTIME = {"Frenchie", "Le Train Bleu"}  # within 140/1.5 .. 140*1.5 a head


def not_monday(day: date) -> date:
    return day + timedelta(days=1) if day.weekday() == 0 else day


def rest_booking(day: date, name: str, city: str, time: str = "19:00", party_size: int = 2) -> dict[str, Any]:
    return {"restaurantName": name, "city": city, "partySize": party_size, "datetime": f"{day.isoformat()}T{time}:00",
            "customer": {"name": "Jane Doe", "email": "jane@example.com"}}


async def ledgers(server: Server, since: str) -> dict[str, dict[str, int]]:
    """What each sandbox provider created since ``since``, from its own books."""
    async with httpx.AsyncClient(base_url=f"{server.base_url}/sandbox", auth=server_credentials(), timeout=30) as sb:
        counts = {}
        for provider_id in PROVIDERS:
            response = await sb.get(f"/api/{provider_id}/ledger", params={"since": since})
            assert response.status_code == 200, response.text
            counts[provider_id] = response.json()["counts"]
        return counts


def nothing_created(counts: dict[str, dict[str, int]]) -> bool:
    return all(n == 0 for by_status in counts.values() for n in by_status.values())


async def test_a_misspelt_venue_ends_with_the_nearest_names_and_books_nothing(
    org: Org, server: Server, day: date, api_only: dict[str, Any]
) -> None:
    since = datetime.now(UTC).isoformat()
    done, events = await run(org.agent, restaurant(day, "Le Bernadin", consent=api_only))
    assert done["status"] == "no_availability", done
    assert "Did you mean Le Bernardin?" in done["summary"] and "Le Bernadin" in done["summary"]
    assert done["error"].startswith("unknown_venue:") and "Le Bernardin?" in done["error"]
    assert done["result"] is None and done["handoffUrl"] is None
    assert "Le Bernardin?" in one(events, "job_failed")["message"]
    assert not {"venue_switched", "paused_payment", "job_completed", "awaiting_approval"} & set(types(events))
    assert {e["reason"] for e in of_type(events, "provider_fallback")} == {"unknown_venue"}
    assert nothing_created(await ledgers(server, since))
    # A typo is not the providers' failure: their success rates are untouched.
    for provider_id in {e["providerId"] for e in of_type(events, "provider_fallback")}:
        assert (await metrics(org.agent, provider_id))["failedCount"] == 0


async def test_made_up_venues_end_with_a_clear_reason_and_no_booking(
    org: Org, server: Server, day: date, api_only: dict[str, Any]
) -> None:
    since = datetime.now(UTC).isoformat()
    cases = [
        restaurant(day, "Nowhere Diner", consent=api_only),
        restaurant(day, "Nowhere Diner", cuisine="Diner", budget_per_person=500, consent=api_only),
        hotel(day, "Hotel Nowhere", city="Paris", consent=api_only),
        activity(day, "The Nowhere Show", consent=api_only),
    ]
    for body, (done, events) in zip(cases, await run_all(org.agent, cases), strict=True):
        params = body["request"]["params"]
        named = params.get("restaurant_name") or params.get("hotel_name") or params["event_name"]
        assert done["status"] == "no_availability", (params, done)
        assert done["error"].startswith("unknown_venue:") and repr(named) in done["error"], done["error"]
        assert "Did you mean" not in done["error"]  # nothing is near enough to suggest
        assert not {"venue_switched", "paused_payment", "job_completed"} & set(types(events)), params
    assert nothing_created(await ledgers(server, since))


async def fill(org: Org, day: date, name: str, time: str, covers: int, city: str = "Paris") -> None:
    while covers:
        party = min(covers, 10)
        response = await org.agent.post(BOOK, json=rest_booking(day, name, city, time, party))
        assert response.status_code == 201, response.text
        covers -= party


async def test_a_full_venue_is_switched_only_to_a_like_one_and_stops_at_payment(
    org: Org, server: Server, day: date, api_only: dict[str, Any]
) -> None:
    await fill(org, day, "Septime", "20:00", 20)
    stay = {"allowTimeAdjustment": False, **api_only}
    (gated, gated_events), (provencal, provencal_events), (kept, kept_events) = await run_all(org.agent, [
        restaurant(day, "Septime", "20:00", city="Paris", consent=stay),
        restaurant(day, "Septime", "20:00", city="Paris", cuisine="Provencal", consent=stay),
        restaurant(day, "Septime", "20:00", city="Paris", consent={**stay, "allowVenueSwitch": False}),
    ])
    # Stating nothing: another French place within Septime's price band, held at the payment page.
    assert gated["status"] == "paused_payment", gated
    moved = one(gated_events, "venue_switched")
    assert (moved["fromVenue"], moved["reason"]) == ("Septime", "no_time_in_window")
    assert moved["toVenue"] == gated["result"]["venueName"] and moved["toVenue"] in FRENCH_NEAR_SEPTIME
    assert moved["why"] == "same cuisine and price band as Septime" and moved["providerId"] == "sandbox-tables"
    assert gated["result"]["start"] == f"{day}T20:00" and gated["handoffUrl"]
    # What the request states decides: Provencal, whatever its price.
    assert provencal["status"] == "paused_payment", provencal
    assert one(provencal_events, "venue_switched")["toVenue"] == provencal["result"]["venueName"] == "Chez Janou"
    assert kept["status"] == "no_availability" and "venue_switched" not in types(kept_events), kept


async def test_a_switch_where_booking_completes_asks_first_unless_the_user_allowed_it(
    org: Org, server: Server, day: date
) -> None:
    await fill(org, day, "Septime", "20:00", 20)
    since = datetime.now(UTC).isoformat()
    dine = {"allowedProviders": ["sandbox-dine"], "allowTimeAdjustment": False}
    asked, asked_events = await run(org.agent, restaurant(day, "Septime", "20:00", city="Paris", consent=dine),
                                    until=ASKING)
    assert asked["status"] == "awaiting_approval", asked
    assert asked["approvalId"] and "venue_switched" in types(asked_events)
    assert one(asked_events, "awaiting_approval")["message"]
    assert nothing_created(await ledgers(server, since))  # nothing booked at sandbox-dine, which has no card gate
    booked, booked_events = await run(org.agent, restaurant(
        day, "Septime", "20:00", city="Paris", consent={**dine, "allowAlternativeBooking": True}))
    assert booked["status"] == "completed", booked
    assert booked["result"]["venueName"] == one(booked_events, "venue_switched")["toVenue"]
    assert booked["result"]["venueName"] in FRENCH_NEAR_SEPTIME and booked["result"]["confirmation"]


async def test_rest_booking_of_an_unknown_restaurant_is_404_with_suggestions(org: Org, day: date) -> None:
    response = await org.agent.post(BOOK, json=rest_booking(day, "Le Bernadin", "New York"))
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "NOT_FOUND" and "Did you mean Le Bernardin?" in error["message"]
    assert error["details"] == {"suggestions": ["Le Bernardin"]}
    made_up = (await org.agent.post(BOOK, json=rest_booking(day, "Nowhere Diner", "New York"))).json()["error"]
    assert made_up["code"] == "NOT_FOUND" and made_up["details"] == {"suggestions": []}
    wrong_city = (await org.agent.post(BOOK, json=rest_booking(day, "Le Bernardin", "New Yrok"))).json()["error"]
    assert wrong_city["details"] == {"suggestions": ["Le Bernardin (New York)"]}, wrong_city


async def test_every_spelling_of_l_arpege_is_one_venue(org: Org, day: date, api_only: dict[str, Any]) -> None:
    day = not_monday(day)
    spellings = ["L'Arpège", "L’Arpege", "L'Arpege", "l’ARPÈGE  "]
    for spelling in spellings:
        response = await org.agent.post(BOOK, json=rest_booking(day, spelling, "Paris", "19:00"))
        assert response.status_code == 201, (spelling, response.text)
        assert response.json()["reservation"]["restaurantName"] == "L'Arpège"
    # Four parties of two took 8 of its 12 covers at 19:00: the bookings share one venue.
    full = await org.agent.post(BOOK, json=rest_booking(day, "L'Arpege", "Paris", "19:00", 6))
    assert full.status_code == 409, full.text
    done, events = await run(org.agent, restaurant(day, "L’Arpege", "20:00", city="Paris", consent=api_only))
    assert done["status"] == "paused_payment", done
    assert (done["result"]["venueId"], done["result"]["venueName"]) == ("rst_l-arpege-paris", "L'Arpège")
    assert "venue_switched" not in types(events)


async def test_lookalike_spellings_find_the_venue_and_wildcards_or_huge_names_find_nothing(
    org: Org, day: date
) -> None:
    day = not_monday(day)
    for spelling in ("Le\u00a0Bernardin", "ＬＥ ＢＥＲＮＡＲＤＩＮ", "le  bernardin", "Le Bernardi\u0301n"):
        response = await org.agent.post(BOOK, json=rest_booking(day, spelling, "new york", "20:00", 1))
        assert response.status_code == 201, (spelling, response.text)
        assert response.json()["reservation"]["restaurantName"] == "Le Bernardin"
    for hostile in ("%", "*", "Le Bernardin%", ".*", "L'Arpège' OR '1'='1", "x" * 200):
        response = await org.agent.post(BOOK, json=rest_booking(day, hostile, "Paris"))
        assert response.status_code == 404, (hostile, response.text)
        assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_a_hotel_switch_keeps_the_stated_star_rating(org: Org, day: date) -> None:
    # sandbox-rooms does not sell Claridge's (London, 5 stars); London's other hotels: The Savoy (5),
    # The Hoxton Shoreditch and citizenM Tower of London (4). Nothing stated and nobody allowed to
    # describe Claridge's: no switch.
    rooms = {"allowedProviders": ["sandbox-rooms"]}
    cases = [hotel(day, "Claridge's", city="London", star_rating=stars, consent=rooms) for stars in (5, 4)]
    cases.append(hotel(day, "Claridge's", city="London", consent=rooms))
    (five, five_events), (four, four_events), (plain, plain_events) = await run_all(org.agent, cases, until=ASKING)
    assert five["status"] == "awaiting_approval", five  # sandbox-rooms would book outright: it asks
    assert one(five_events, "venue_switched")["toVenue"] == "The Savoy"
    assert four["status"] == "awaiting_approval", four
    assert one(four_events, "venue_switched")["toVenue"] in {"The Hoxton Shoreditch", "citizenM Tower of London"}
    assert plain["status"] == "no_availability" and "venue_switched" not in types(plain_events), plain
