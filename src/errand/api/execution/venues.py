"""``GET /api/v1/venues``: venue search in the execution dialect. The rules live in errand.venues."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BeforeValidator, Field

from errand.api import openapi as doc
from errand.api.common import core_of
from errand.api.execution.auth import Caller
from errand.venues import service as venues_service
from errand.venues.schemas import DEFAULT_LIMIT, MAX_LIMIT, VENUE_SCENARIOS, VenuePage

router = APIRouter()


@router.get("", response_model=VenuePage, summary="Find venues", responses=doc.errors(403))
async def list_venues(
    request: Request, caller: Caller,
    scenario: Annotated[str | None, Query(description="restaurant, hotel or activity; default: every venue "
                                                      "scenario your key may use.",
                                          json_schema_extra={"enum": list(VENUE_SCENARIOS)})] = None,
    city: Annotated[str | None, Query(description="Exact city name, e.g. New York.")] = None,
    q: Annotated[str | None, Query(description="Part of the venue's name, e.g. arpege.")] = None,
    cuisine: Annotated[str | None, Query(description="Restaurants: exact cuisine, e.g. Italian.")] = None,
    neighborhood: Annotated[str | None, Query(description="Exact neighborhood, e.g. SoHo.")] = None,
    limit: Annotated[Annotated[int, Field(ge=1, le=MAX_LIMIT)] | None, BeforeValidator(lambda v: v or None),
                     Query(description=f"1–{MAX_LIMIT} venues a page; default {DEFAULT_LIMIT}.")] = None,
    cursor: Annotated[str | None, Query(description="The nextCursor of the page before.")] = None,
) -> VenuePage:
    """The restaurants, hotels and events your key's providers sell, one entry per venue, by city then name.

    Use it to find a venue's exact `name` and `city` before searching availability or creating a job.
    Text filters ignore case, accents and apostrophe styles (`q=l'arpege` finds "L'Arpège"); `q` is up to
    200 characters. Each venue lists the `providers` that sell it (test keys: sandbox providers only).
    Page with `limit` and `cursor` (the previous page's `nextCursor`; null on the last page).

    Errors: 400 `invalid_request` (an unknown scenario, `flight` — flights have routes, not venues —, a
    filter too long, a bad `limit` or `cursor`), 403 `scenario_not_allowed` (a scenario outside your key's),
    503 `provider_unavailable` (no provider could be reached; retry)."""
    wanted = venues_service.filters({"scenario": scenario, "city": city, "q": q, "cuisine": cuisine,
                                     "neighborhood": neighborhood, "limit": limit, "cursor": cursor})
    return await venues_service.find_venues(core_of(request), caller, wanted)
