"""What venue search takes and gives back: one shape for REST (``GET /api/v1/venues``) and MCP (``find_venues``).

Both dialects answer with :class:`VenuePage` as it serializes (camelCase), so an agent sees
the same venues, fields and cursor over either.
"""

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from errand.kit import inputs

VENUE_SCENARIOS = ("restaurant", "hotel", "activity")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

Filter = inputs.text(200, strip=True)
Cursor = inputs.text(500)


class VenueFilters(BaseModel):
    """A venue search. Every filter is optional; all given ones must match.

    ``scenario``: restaurant, hotel or activity (flights have routes, not venues); without it,
    every venue scenario the key may use. ``city``, ``cuisine``, ``neighborhood``: exact;
    ``q``: part of the venue's name. All ignore case, accents and apostrophe styles.
    ``limit`` 1–100 (default 20) a page; ``cursor`` is the ``nextCursor`` of the page before.
    """

    model_config = ConfigDict(extra="forbid")

    scenario: Filter | None = None
    city: Filter | None = None
    q: Filter | None = None
    cuisine: Filter | None = None
    neighborhood: Filter | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, strict=True)
    cursor: Cursor | None = None


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, serialize_by_alias=True)


class VenueProvider(_Out):
    """One provider that sells the venue, and the venue's id there."""

    provider_id: str
    venue_id: str


class VenueView(_Out):
    """A venue: what an agent needs to choose it, then to search or book it by ``name`` and ``city``.

    Restaurants have ``cuisine``, ``pricePerPersonUsd`` and ``maxPartySize``; hotels
    ``starRating``; events ``category`` and ``place``. ``priceFromUsd`` is the lowest unit
    price (per ``priceUnit``: person, night or ticket) and ``priceBand`` its band, ``$`` to
    ``$$$$``. ``providers`` lists every provider available to the key that sells it, in the
    order a job would try them.
    """

    scenario: str
    name: str
    city: str
    neighborhood: str | None = None
    cuisine: str | None = None
    category: str | None = None
    place: str | None = Field(default=None, description="Events: the theatre, arena or hall.")
    star_rating: int | None = None
    price_band: str | None = None
    price_from_usd: float | None = None
    price_unit: str | None = None
    price_per_person_usd: float | None = None
    max_party_size: int | None = None
    timezone: str | None = None
    providers: list[VenueProvider]


class VenuePage(_Out):
    """One page of venues, by city then name; ``nextCursor`` continues (null on the last page)."""

    venues: list[VenueView]
    count: int
    next_cursor: str | None = None
