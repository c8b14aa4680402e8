"""Search and alternatives of the job API, per scenario, through the provider adapters.

Nothing here books, so tests share dates freely. 2027-03-01 is a Monday, 03-02 a Tuesday,
03-06 a Saturday.
"""

from typing import Any

import httpx
import pytest

from errand.providers.base import SearchQuery
from errand.providers.errors import VenueNotServed
from errand.providers.sandbox import SandboxApiProvider

Adapters = dict[str, SandboxApiProvider]


def restaurant(venue: str, day: str = "2027-03-01", covers: int = 2, **kw: Any) -> SearchQuery:
    return SearchQuery(scenario="restaurant", venue=venue, city="New York", date=day, quantity=covers, **kw)


def hotel(venue: str, checkin: str, checkout: str, adults: int, city: str = "New York") -> SearchQuery:
    return SearchQuery(scenario="hotel", venue=venue, city=city, date=checkin, end_date=checkout, quantity=adults)


def flight(origin: str, dest: str, day: str, passengers: int = 1) -> SearchQuery:
    return SearchQuery(scenario="flight", origin=origin, dest=dest, date=day, quantity=passengers)


def event(venue: str, day: str, tickets: int = 2) -> SearchQuery:
    return SearchQuery(scenario="activity", venue=venue, city="New York", date=day, quantity=tickets)


async def test_restaurant_search_lists_every_free_slot_of_the_day(providers: Adapters) -> None:
    offers = await providers["sandbox-tables"].search(restaurant("le bernardin", time="19:00"))
    assert [o.start[11:] for o in offers] == [
        "17:00", "17:30", "18:00", "18:30", "19:00", "19:30", "20:00", "20:30", "21:00", "21:30", "22:00",
    ]
    first = offers[0]
    assert (first.provider_id, first.scenario, first.venue_id, first.unit) == (
        "sandbox-tables", "restaurant", "rst_le-bernardin-new-york", "table"
    )
    assert (first.unit_price_usd, first.total_price_usd, first.remaining) == (225, 450, 10)
    assert first.attributes["cuisine"] == "French"
    assert await providers["sandbox-tables"].search(restaurant("Le Bernardin", covers=7)) == []


async def test_hotel_search_offers_room_types_that_sleep_the_adults_for_every_night(providers: Adapters) -> None:
    offers = await providers["sandbox-stays"].search(hotel("The Plaza", "2027-03-01", "2027-03-04", adults=3))
    assert [(o.unit, o.unit_price_usd, o.total_price_usd, o.remaining) for o in offers] == [
        ("DBL", 1056, 3168, 10), ("STE", 2028, 6084, 3),
    ]
    assert (offers[0].start, offers[0].end, offers[0].attributes["nights"]) == ("2027-03-01T15:00", "2027-03-04", 3)
    pair = await providers["sandbox-stays"].search(hotel("The Plaza", "2027-03-01", "2027-03-02", adults=2))
    assert [o.unit for o in pair] == ["STD", "DBL", "STE"]
    assert await providers["sandbox-stays"].search(hotel("The Plaza", "2027-03-01", "2027-03-02", adults=5)) == []


async def test_flight_search_takes_airport_codes_or_city_names(providers: Adapters) -> None:
    by_city = await providers["sandbox-air"].search(flight("New York", "san francisco", "2027-03-01"))
    assert sorted({o.venue_id for o in by_city}) == ["AA116", "UA107", "UA126", "UA15"]
    by_code = await providers["sandbox-air"].search(flight("JFK", "SFO", "2027-03-01", passengers=2))
    assert [o.unit for o in by_code] == ["economy", "premium_economy", "business"]  # UA15 sells no first class
    economy = by_code[0]
    assert (economy.venue_id, economy.start, economy.total_price_usd) == ("UA15", "2027-03-01T08:00", 460)
    assert economy.attributes["arrives_local"] == "2027-03-01T11:25"  # 385 minutes, three time zones west
    assert economy.attributes["airline_name"] == "United Airlines"


async def test_flight_search_lists_a_flight_only_on_the_days_it_operates(providers: Adapters) -> None:
    monday = await providers["sandbox-air"].search(flight("JFK", "MDW", "2027-03-01"))
    tuesday = await providers["sandbox-air"].search(flight("JFK", "MDW", "2027-03-02"))
    assert monday == []
    assert {o.venue_id for o in tuesday} == {"DL267", "AS275"}


async def test_event_search_lists_seat_types_on_the_days_it_plays(providers: Adapters) -> None:
    assert await providers["sandbox-tickets"].search(event("Hamilton", "2027-03-01")) == []  # dark on Mondays
    offers = await providers["sandbox-tickets"].search(event("Hamilton", "2027-03-02", tickets=4))
    assert [(o.unit, o.unit_name, o.total_price_usd) for o in offers] == [
        ("ORCH", "Orchestra", 768), ("MEZZ", "Mezzanine", 480), ("BALC", "Balcony", 288),
    ]
    assert offers[0].start == "2027-03-02T19:00"


async def test_unknown_venue_or_route_is_not_served(providers: Adapters) -> None:
    with pytest.raises(VenueNotServed):
        await providers["sandbox-tables"].search(restaurant("Chez Nobody"))
    with pytest.raises(VenueNotServed):
        await providers["sandbox-air"].search(flight("JFK", "Atlantis", "2027-03-01"))
    with pytest.raises(VenueNotServed):
        await providers["sandbox-stays"].search(hotel("The Plaza", "2027-03-01", "2027-03-02", 2, city="Paris"))


async def test_restaurant_alternatives_keep_the_time_and_skip_blocked_venues(providers: Adapters) -> None:
    offers = await providers["sandbox-tables"].alternatives(restaurant("Le Bernardin", time="19:00"))
    venues = [o.venue_name for o in offers]
    assert venues[0] == "Balthazar"  # French, like Le Bernardin
    assert {o.start for o in offers} == {"2027-03-01T19:00"}
    assert "Le Bernardin" not in venues
    # Login wall, CAPTCHA and not served at sandbox-tables: never offered as a switch there.
    assert not {"Gramercy Tavern", "Peter Luger", "Tatiana", "Via Carota"} & set(venues)
    assert len(set(venues)) <= 5


async def test_hotel_and_event_alternatives_keep_the_dates(providers: Adapters) -> None:
    stays = await providers["sandbox-stays"].alternatives(hotel("The Plaza", "2027-03-01", "2027-03-03", adults=2))
    assert {o.venue_name for o in stays} == {"The Standard High Line"}  # the other three are walled off
    assert {(o.start, o.end) for o in stays} == {("2027-03-01T15:00", "2027-03-03")}
    shows = await providers["sandbox-tickets"].alternatives(event("Hamilton", "2027-03-06"))
    assert {o.venue_name for o in shows} == {"The Lion King"}
    assert await providers["sandbox-air"].alternatives(flight("JFK", "SFO", "2027-03-01")) == []


@pytest.mark.parametrize(("provider", "body"), [
    ("sandbox-tables", {"scenario": "restaurant", "venue": "Le Bernardin", "date": "2027-03-01"}),
    ("sandbox-tables", {"scenario": "restaurant", "venue": "Le Bernardin", "date": "2027-02-30", "quantity": 2}),
    ("sandbox-tables", {"scenario": "restaurant", "venue": "Le Bernardin", "date": "2027-03-01", "time": "7pm",
                        "quantity": 2}),
    ("sandbox-tables", {"scenario": "cruise", "venue": "Le Bernardin", "date": "2027-03-01", "quantity": 2}),
    ("sandbox-tables", {"scenario": "restaurant", "venue": "Le Bernardin", "date": "2027-03-01", "quantity": 0}),
    ("sandbox-tables", []),
    ("sandbox-stays", {"scenario": "hotel", "venue": "The Plaza", "date": "2027-03-01", "quantity": 2}),
    ("sandbox-stays", {"scenario": "hotel", "venue": "The Plaza", "date": "2027-03-01", "end_date": "2027-03-01",
                       "quantity": 2}),
    ("sandbox-air", {"scenario": "flight", "origin": "JFK", "date": "2027-03-01", "quantity": 2}),
])
async def test_invalid_searches_are_a_400_in_the_sandbox_error_shape(
    sandbox: httpx.AsyncClient, provider: str, body: Any
) -> None:
    response = await sandbox.post(f"/api/{provider}/search", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid" and response.json()["message"]


async def test_a_scenario_the_provider_does_not_sell_is_refused(sandbox: httpx.AsyncClient) -> None:
    body = {"scenario": "hotel", "venue": "The Plaza", "date": "2027-03-01", "end_date": "2027-03-02", "quantity": 2}
    response = await sandbox.post("/api/sandbox-air/search", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_scenario"
