"""The four sandbox booking sites, one adapter each: their forms and how their offers read.

Field names, ids and ``data-*`` attributes are the sites' DOM contract (``docs/sandbox-web.md``).
A ``data-*`` attribute arrives as the DOM's dataset key (``data-total-usd`` → ``totalUsd``).
"""

import re
from typing import Any

from errand.providers.base import Offer, SearchQuery
from errand.providers.browser.provider import WebProvider, money, slug


def _name(traveler: dict[str, Any]) -> tuple[str, str]:
    return str(traveler.get("first_name") or ""), str(traveler.get("last_name") or "")


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
    search_form = "#find-table"
    search_button = "#find-table-submit"
    details_form = "#guest-details"
    details_button = "#complete-reservation"

    def search_fields(self, query: SearchQuery) -> dict[str, Any]:
        return {"restaurant": query.venue, "city": query.city, "date": query.date, "party_size": query.quantity}

    def details_fields(self, traveler: dict[str, Any]) -> dict[str, Any]:
        first, last = _name(traveler)
        return {"first_name": first, "last_name": last, "email": traveler.get("email"),
                "phone": traveler.get("phone")}

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
    search_form = "#hotel-search"
    search_button = "#search-rooms"
    details_form = "#guest-form"
    details_button = "#continue-to-payment"

    def search_fields(self, query: SearchQuery) -> dict[str, Any]:
        return {"hotel": query.venue, "city": query.city, "check_in": query.date, "check_out": query.end_date,
                "adults": query.quantity}

    def details_fields(self, traveler: dict[str, Any]) -> dict[str, Any]:
        first, last = _name(traveler)
        return {"given_name": first, "family_name": last, "email_address": traveler.get("email"),
                "phone_number": traveler.get("phone")}

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
    search_form = "#flight-search"
    search_button = "#search-flights"
    details_form = "#traveler-form"
    details_button = "#continue"

    def search_fields(self, query: SearchQuery) -> dict[str, Any]:
        return {"from": query.origin, "to": query.dest, "departure_date": query.date,
                "passengers": query.quantity}

    def details_fields(self, traveler: dict[str, Any]) -> dict[str, Any]:
        first, last = _name(traveler)
        return {"traveler_first_name": first, "traveler_last_name": last, "contact_email": traveler.get("email"),
                "contact_phone": traveler.get("phone"), "date_of_birth": traveler.get("dob"),
                "passport_number": traveler.get("passport_number"),
                "passport_country": (traveler.get("passport_country") or "").upper()[:2] or None}

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
    search_form = "#ticket-search"
    search_button = "#find-tickets"
    details_form = "#buyer-details"
    details_button = "#buy-now"

    def search_fields(self, query: SearchQuery) -> dict[str, Any]:
        return {"event": query.venue, "city": query.city, "date": query.date, "quantity": query.quantity}

    def details_fields(self, traveler: dict[str, Any]) -> dict[str, Any]:
        first, last = _name(traveler)
        return {"full_name": f"{first} {last}".strip(), "email": traveler.get("email"),
                "mobile": traveler.get("phone")}

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
