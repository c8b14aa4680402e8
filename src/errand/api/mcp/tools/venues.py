"""find_venues: which restaurants, hotels and events exist, before any date is known (errand.venues)."""

from typing import Annotated, Literal

from pydantic import Field

from errand.api.mcp.tooldef import Call, ToolDef
from errand.venues import service as venues_service
from errand.venues.schemas import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Filter, VenuePage


async def find_venues(
    call: Call,
    scenario: Annotated[Literal["restaurant", "hotel", "activity"] | None, Field(description=(
        "restaurant, hotel or activity (events). Leave out for every kind your key may use. Flights have "
        "routes, not venues: use search_availability with origin and dest."))] = None,
    city: Annotated[Filter | None, Field(description="Exact city name, e.g. New York.")] = None,
    q: Annotated[Filter | None, Field(description="Part of the venue's name, e.g. \"arpege\".")] = None,
    cuisine: Annotated[Filter | None, Field(description="Restaurants: exact cuisine, e.g. Italian.")] = None,
    neighborhood: Annotated[Filter | None, Field(description="Exact neighborhood, e.g. SoHo.")] = None,
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, strict=True,
                                description=f"At most this many venues (default {DEFAULT_LIMIT}).")] = DEFAULT_LIMIT,
    cursor: Annotated[Cursor | None, Field(description=(
        "nextCursor of the previous result, for the next page."))] = None,
) -> VenuePage:
    """List the restaurants, hotels and events you can book, with their exact names, by city then name.

    Read-only. Use it when the user names a place vaguely ("that French place in Paris", "a 5-star
    hotel in London") or to propose options; then search_availability, book_reservation or
    create_execution_job with the venue's exact `name` and `city`. Text filters ignore case,
    accents and apostrophe styles.

    Result: venues, each with scenario, name, city, neighborhood, cuisine (restaurants),
    starRating (hotels), category and place (events), priceBand ($ to $$$$), priceFromUsd per
    priceUnit, and providers (providerId, venueId) that sell it; count; nextCursor (pass it as
    cursor for the next page; null on the last). An empty list means nothing matches: loosen a
    filter.

    Errors (isError, JSON {"error": {code, message, details}}):
    - INVALID_REQUEST: a filter is malformed or too long, or the cursor is not one this tool gave.
    - POLICY_VIOLATION: your API key may not use this scenario.
    - PROVIDER_UNAVAILABLE: no provider could be reached; retry shortly.
    """
    wanted = venues_service.filters({"scenario": scenario, "city": city, "q": q, "cuisine": cuisine,
                                     "neighborhood": neighborhood, "limit": limit, "cursor": cursor})
    return await venues_service.find_venues(call.core, call.principal, wanted)


TOOLS = [
    ToolDef(name="find_venues", title="Find venues", handler=find_venues, read_only=True, destructive=False,
            idempotent=True, open_world=True),
]
