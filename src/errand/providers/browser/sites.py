"""The four sandbox booking sites, one adapter each: their forms and how their offers read.

Field names, ids and ``data-*`` attributes are the sites' DOM contract (``docs/sandbox-web.md``).
A ``data-*`` attribute arrives as the DOM's dataset key (``data-total-usd`` → ``totalUsd``).
"""

import re
from typing import Any

from errand.providers.base import Offer, SearchQuery
from errand.providers.browser.flow import Forms
from errand.providers.browser.provider import WebProvider, money, slug

def _price(row: dict[str, str], quantity: int) -> tuple[Any, Any]:
    unit = money(row.get("unitUsd"))
    total = money(row.get("totalUsd")) or unit * quantity
    return unit, total


def _venue(query: SearchQuery, venue: dict[str, str]) -> tuple[str, str, str]:
    name = venue.get("venueName") or venue.get("venue") or query.venue or ""
    city = venue.get("city") or query.city or ""
    return venue.get("venueId") or slug(f"{name}-{city}"), name, city


def _remaining(row: dict[str, str], quantity: int) -> int:
    try:
        return int(row.get("remaining") or quantity)
    except ValueError:
        return quantity


class WebTables(WebProvider):
    """Restaurants, through the Web Tables site; card-gated."""

    id = "web-tables"
    display_name = "Web Tables"
    scenarios = ("restaurant",)
    forms = Forms("#find-table", "#find-table-submit", "#guest-details", "#complete-reservation")
    search_names = {"restaurant": "venue", "city": "city", "date": "date", "party_size": "quantity"}
    details_names = {"first_name": "first_name", "last_name": "last_name", "email": "email", "phone": "phone"}

    def to_offer(self, query: SearchQuery, row: dict[str, str], venue: dict[str, str]) -> Offer:
        venue_id, name, city = _venue(query, venue)
        unit, total = _price(row, query.quantity)
        start = row.get("start") or f"{query.date}T{row.get('time')}"
        return Offer(provider_id=self.id, scenario="restaurant", venue_id=venue_id, venue_name=name, city=city,
                     unit="table", unit_name="Table", start=start, quantity=query.quantity, unit_price_usd=unit,
                     total_price_usd=total, remaining=_remaining(row, query.quantity),
                     attributes={k: v for k, v in venue.items() if k in ("cuisine", "neighborhood", "timezone")})

    def same_offer(self, offer: Offer, row: dict[str, str]) -> bool:
        return row.get("start") == offer.start


class WebStays(WebProvider):
    """Hotels, through the Web Stays site; card-gated."""

    id = "web-stays"
    display_name = "Web Stays"
    scenarios = ("hotel",)
    forms = Forms("#hotel-search", "#search-rooms", "#guest-form", "#continue-to-payment")
    search_names = {"hotel": "venue", "city": "city", "check_in": "date", "check_out": "end_date",
                    "adults": "quantity"}
    details_names = {"given_name": "first_name", "family_name": "last_name", "email_address": "email",
                     "phone_number": "phone"}

    def to_offer(self, query: SearchQuery, row: dict[str, str], venue: dict[str, str]) -> Offer:
        venue_id, name, city = _venue(query, venue)
        unit, total = money(row.get("nightlyUsd") or row.get("unitUsd")), money(row.get("totalUsd"))
        check_in = venue.get("checkInTime") or "15:00"
        attributes: dict[str, Any] = {k: v for k, v in venue.items() if k in ("neighborhood", "timezone")}
        if venue.get("starRating"):
            attributes["star_rating"] = int(venue["starRating"])
        return Offer(provider_id=self.id, scenario="hotel", venue_id=venue_id, venue_name=name, city=city,
                     unit=row.get("room", ""), unit_name=row.get("roomName") or row.get("room", ""),
                     start=row.get("start") or f"{query.date}T{check_in}", end=query.end_date,
                     quantity=query.quantity, unit_price_usd=unit, total_price_usd=total or unit,
                     remaining=_remaining(row, 1), attributes=attributes)

    def same_offer(self, offer: Offer, row: dict[str, str]) -> bool:
        return row.get("room") == offer.unit


# "UA15 United Airlines · JFK 08:00 → SFO 11:20 · Economy · $230": what a fare shows in words.
_FARE_TEXT = re.compile(r"^\S+\s+(?P<airline>.+?)\s+·\s+(?P<origin>[A-Z]{3})\s+\S+\s+→\s+(?P<dest>[A-Z]{3})")


class WebAir(WebProvider):
    """Flights, through the Web Air site; card-gated."""

    id = "web-air"
    display_name = "Web Air"
    scenarios = ("flight",)
    forms = Forms("#flight-search", "#search-flights", "#traveler-form", "#continue")
    search_names = {"from": "origin", "to": "dest", "departure_date": "date", "passengers": "quantity"}
    details_names = {"traveler_first_name": "first_name", "traveler_last_name": "last_name",
                     "contact_email": "email", "contact_phone": "phone", "date_of_birth": "dob",
                     "passport_number": "passport_number", "passport_country": "passport_country"}

    def to_offer(self, query: SearchQuery, row: dict[str, str], venue: dict[str, str]) -> Offer:
        number = row.get("flight", "")
        unit, total = _price(row, query.quantity)
        cabin = row.get("cabin", "economy")
        shown = _FARE_TEXT.match(row.get("_text", ""))
        airline_name = shown["airline"] if shown else ""
        origin = shown["origin"] if shown else query.origin or ""
        dest = shown["dest"] if shown else query.dest or ""
        return Offer(provider_id=self.id, scenario="flight", venue_id=number,
                     venue_name=f"{airline_name} {number}".strip(), city=query.origin or origin, unit=cabin,
                     unit_name=cabin.replace("_", " ").title(), start=row.get("departs", ""),
                     quantity=query.quantity, unit_price_usd=unit, total_price_usd=total,
                     remaining=_remaining(row, query.quantity),
                     attributes={"flight_number": number, "airline": "".join(c for c in number if c.isalpha()),
                                 "airline_name": airline_name, "origin": origin, "dest": dest})

    def same_offer(self, offer: Offer, row: dict[str, str]) -> bool:
        return row.get("flight") == offer.venue_id and row.get("cabin") == offer.unit


class WebTickets(WebProvider):
    """Event tickets, through the Web Tickets site; card-gated."""

    id = "web-tickets"
    display_name = "Web Tickets"
    scenarios = ("activity",)
    forms = Forms("#ticket-search", "#find-tickets", "#buyer-details", "#buy-now")
    search_names = {"event": "venue", "city": "city", "date": "date", "quantity": "quantity"}
    details_names = {"full_name": "full_name", "email": "email", "mobile": "phone"}

    def to_offer(self, query: SearchQuery, row: dict[str, str], venue: dict[str, str]) -> Offer:
        venue_id, name, city = _venue(query, venue)
        unit, total = _price(row, query.quantity)
        attributes = {k: v for k, v in venue.items() if k in ("category", "timezone")}
        return Offer(provider_id=self.id, scenario="activity", venue_id=venue_id, venue_name=name, city=city,
                     unit=row.get("seat", ""), unit_name=row.get("_heading") or row.get("seat", ""),
                     start=row.get("start") or query.date, quantity=query.quantity, unit_price_usd=unit,
                     total_price_usd=total, remaining=_remaining(row, query.quantity), attributes=attributes)

    def same_offer(self, offer: Offer, row: dict[str, str]) -> bool:
        return row.get("seat") == offer.unit
