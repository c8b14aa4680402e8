"""search_availability: what is bookable near a time, for any scenario (errand.jobs.search)."""

import datetime as dt
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, StringConstraints

from errand.api.mcp import schemas
from errand.api.mcp.schemas import Availability, either
from errand.api.mcp.tooldef import Call, ToolDef
from errand.bookings.schemas import Name
from errand.jobs import service as jobs_service
from errand.jobs.schemas import SearchQuery
from errand.kit import limits
from errand.kit.inputs import StrictInt, Text

HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


async def search_availability(
    call: Call,
    date: Annotated[dt.date, Field(description=(
        "YYYY-MM-DD, local to the venue: the day of the table or event, the check-in (hotels) or the "
        "departure (flights). Not in the past, at most two years ahead."))],
    quantity: Annotated[int, Field(
        # The bound depends on the scenario: errand.jobs.search checks it and names the limit.
        ge=1, strict=True, json_schema_extra={"maximum": limits.ANY_QUANTITY_MAX},
        validation_alias=AliasChoices("quantity", "party_size", "partySize"),
        description=f"Covers (restaurant, at most {limits.PARTY_SIZE_MAX}), adults in one room (hotel, at "
                    f"most {limits.ADULTS_MAX}), passengers (flight, at most {limits.PASSENGERS_MAX}) or "
                    f"tickets (activity, at most {limits.TICKETS_MAX}).")],
    scenario: Annotated[Literal["restaurant", "hotel", "flight", "activity"], Field(
        description="What to search; default restaurant.")] = "restaurant",
    venue: Annotated[Name | None, Field(
        validation_alias=AliasChoices("venue", "restaurant_name", "restaurantName", "hotel_name",
                                      "event_name"),
        description="The restaurant, hotel or event name (all but flights).")] = None,
    city: Annotated[Name | None, Field(description="The venue's city (all but flights).")] = None,
    origin: Annotated[Name | None, Field(description="Flights: departure city or airport.")] = None,
    dest: Annotated[Name | None, Field(description="Flights: arrival city or airport.")] = None,
    time: Annotated[HHMM | None, Field(description=(
        "HH:MM (24 h), venue-local: offers nearest to it come first. Leave out for the whole day."))] = None,
    end_date: Annotated[dt.date | None, either("end_date", "Hotels: the checkout date (YYYY-MM-DD).")] = None,
    preferences: Annotated[dict[Text, Text | StrictInt | float] | None, Field(max_length=20, description=(
        "Optional, as the execution API names them: cuisine, neighborhood (restaurant); star_rating, "
        "room_preference (hotel); cabin_class, targetAirline, targetFlightNumber (flight); seat_type "
        "(activity)."))] = None,
    limit: Annotated[int, Field(ge=1, le=100, strict=True,
                                description="At most this many offers (default 20).")] = 20,
) -> Availability:
    """List what can be booked right now for a restaurant, hotel, flight or event, nearest to a time first.

    Read-only: nothing is held or booked, and results can change at any moment. Use it
    before booking to pick a time that is free, or to answer "what is available around 8pm?".

    Needs: restaurant/activity: venue, city, date, quantity; hotel: venue, city, date,
    end_date, quantity; flight: origin, dest, date, quantity.

    Result: offers, each with providerId, venueName, city, start (venue-local
    YYYY-MM-DDTHH:MM), prices and remaining capacity. An empty list means the venue exists
    but nothing fits that day for that quantity: try another date or a smaller party.
    To book a restaurant offer now: book_reservation with restaurant_name = venueName, city,
    party_size = quantity and datetime = start. For any scenario (and to let Errand adjust
    the time or switch provider): create_execution_job.

    Errors (isError, JSON {"error": {code, message, details}}):
    - NOT_FOUND: no provider available to your key sells that venue or route; check names.
    - INVALID_REQUEST: a field the scenario needs is missing or malformed, the date is past or more
      than two years ahead, or the quantity is over the scenario's limit; see details.
    - POLICY_VIOLATION: your API key may not use this scenario.
    - PROVIDER_UNAVAILABLE: the providers could not be reached; retry shortly.
    """
    query = SearchQuery(
        scenario=scenario, city=city, venue=venue, origin=origin, dest=dest, date=date.isoformat(), time=time,
        end_date=end_date.isoformat() if end_date else None, quantity=quantity, preferences=preferences or {},
    )
    offers = await jobs_service.search_availability(call.core, call.principal, query)
    return schemas.availability(scenario, date.isoformat(), time, offers, limit)


TOOLS = [
    ToolDef(name="search_availability", title="Search what is bookable", handler=search_availability,
            read_only=True, destructive=False, idempotent=True, open_world=True),
]
