"""What each sandbox provider sells, as venue listings: for its venues API and the index page.

A provider lists every venue of its scenarios that it serves (``not_served`` venues are
left out; venues behind a login wall or a CAPTCHA are listed, as a real site lists them
before it asks anyone to sign in). Flights have routes, not venues, and are never listed.
The price band is the sandbox's own reading of the lowest unit price: restaurants per
person, hotels per night, events per ticket.
"""

from typing import Any

from errand.sandbox.catalog import Provider
from errand.sandbox.world import Event, Hotel, Restaurant, load_world

VENUE_SCENARIOS = ("restaurant", "hotel", "activity")

# Upper bounds (USD, exclusive) of the bands "$", "$$", "$$$"; anything dearer is "$$$$".
_BANDS = {"person": (40, 100, 200), "night": (200, 400, 700), "ticket": (60, 120, 250)}


def price_band(price: int, unit: str) -> str:
    """``$`` to ``$$$$`` for a unit price, by the thresholds of its unit (see ``_BANDS``)."""
    return "$" * (1 + sum(price >= bound for bound in _BANDS[unit]))


def _restaurant(venue: Restaurant) -> dict[str, Any]:
    price = venue.price_per_person_usd
    return {"scenario": "restaurant", "id": venue.id, "name": venue.name, "city": venue.city,
            "timezone": venue.timezone, "neighborhood": venue.neighborhood, "cuisine": venue.cuisine,
            "price_per_person_usd": price, "price_from_usd": price, "price_unit": "person",
            "price_band": price_band(price, "person"), "max_party_size": venue.max_party_size}


def _hotel(venue: Hotel) -> dict[str, Any]:
    price = min(r.nightly_rate_usd for r in venue.room_types)
    return {"scenario": "hotel", "id": venue.id, "name": venue.name, "city": venue.city,
            "timezone": venue.timezone, "neighborhood": venue.neighborhood, "star_rating": venue.star_rating,
            "price_from_usd": price, "price_unit": "night", "price_band": price_band(price, "night")}


def _event(venue: Event) -> dict[str, Any]:
    price = min(s.price_usd for s in venue.seat_types)
    return {"scenario": "activity", "id": venue.id, "name": venue.name, "city": venue.city,
            "timezone": venue.timezone, "category": venue.category, "place": venue.venue,
            "price_from_usd": price, "price_unit": "ticket", "price_band": price_band(price, "ticket")}


def listings(provider: Provider, scenario: str | None = None, city: str | None = None) -> list[dict[str, Any]]:
    """The venues ``provider`` sells, of ``scenario`` (default: all it sells) and in ``city``
    (exact, ignoring case; default: every city), by city then name."""
    world = load_world()
    found: list[dict[str, Any]] = []
    for wanted, venues, describe in (("restaurant", world.restaurants, _restaurant),
                                     ("hotel", world.hotels, _hotel), ("activity", world.events, _event)):
        if wanted not in provider.scenarios or scenario not in (None, wanted):
            continue
        for venue in venues.values():  # type: ignore[attr-defined]
            if provider.serves((venue.id,)) and (city is None or venue.city.casefold() == city.casefold()):
                found.append({"provider_id": provider.id, **describe(venue)})
    return sorted(found, key=lambda v: (v["city"], v["name"].casefold()))
