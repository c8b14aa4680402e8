"""Venue search: every restaurant, hotel and event the caller's providers sell, one entry per venue.

An agent cannot book what it cannot name: ``search_availability`` and job requests take a
venue's exact name and city. This answers "which venues are there?" from the same provider
adapters that search and book, through their optional
:class:`~errand.providers.base.VenueDirectory` capability, so it lists exactly what the
caller could book. Nothing is held or written, and a search is not audited.

Scope: only the key's scenarios (another scenario asked for by name is Forbidden
``scenario_not_allowed``), and test keys reach sandbox providers only, as for jobs
(:meth:`errand.providers.registry.ProviderRegistry.for_scenario`). A provider that cannot be
reached is left out and the others still answer; only when every provider asked was down
does the search fail (Unavailable, safe to retry).

The same venue sold by several providers is one entry listing them all, in the registry's
order (the order a job would try them): two listings are the same venue when scenario,
city and name agree, ignoring case, accents and apostrophe styles. Pages are in order of
city, then name, then scenario; the cursor is the last entry's place in that order, so a
page never repeats or skips a venue while the providers' catalogs stay the same.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import inputs, names, pagination
from errand.kit.core import Core
from errand.kit.errors import InvalidRequest
from errand.providers.base import VenueDirectory, VenueListing, VenueQuery
from errand.providers.errors import ProviderUnavailable
from errand.venues.schemas import VENUE_SCENARIOS, VenueFilters, VenuePage, VenueProvider, VenueView


def filters(raw: Mapping[str, Any]) -> VenueFilters:
    """Validate a venue search's parameters; InvalidRequest names every field that is wrong.

    An empty or null parameter counts as absent (``?city=&q=`` lists everything), as in
    the execution dialect's other lists."""
    try:
        return VenueFilters.model_validate({k: v for k, v in raw.items() if v is not None and v != ""})
    except ValidationError as exc:
        found = inputs.issues(exc)
        raise InvalidRequest(f"The venue search is invalid: {inputs.summarize(found)}.", details=found) from None


def _scenarios(principal: Principal, scenario: str | None) -> list[str]:
    if scenario is None:
        return [s for s in VENUE_SCENARIOS if s in principal.scenarios]
    if scenario not in identity_service.SCENARIOS:
        raise InvalidRequest(f"scenario: must be one of {', '.join(VENUE_SCENARIOS)}.",
                             details=[{"path": "scenario", "message": "unknown scenario"}])
    identity_service.require_scenario(principal, scenario)
    if scenario not in VENUE_SCENARIOS:
        raise InvalidRequest("scenario: flights have routes, not venues; name a route by origin and dest "
                             "(a flight job, or MCP's search_availability).",
                             details=[{"path": "scenario", "message": "flights have no venues"}])
    return [scenario]


def _key(venue: VenueView) -> list[str]:
    return [names.normalise(venue.city), names.normalise(venue.name), venue.scenario]


def _cursor_key(key: list[Any]) -> list[str]:
    """A venue cursor's key: the last entry's normalised city and name and its scenario."""
    if not (len(key) == 3 and all(isinstance(k, str) for k in key)):
        raise ValueError("a venue cursor holds three strings")
    return key


def _matches(listing: VenueListing, wanted: VenueFilters) -> bool:
    def same(value: str | None, asked: str | None) -> bool:
        return asked is None or (value is not None and names.normalise(value) == names.normalise(asked))

    return (same(listing.city, wanted.city) and same(listing.cuisine, wanted.cuisine)
            and same(listing.neighborhood, wanted.neighborhood)
            and (wanted.q is None or names.normalise(wanted.q) in names.normalise(listing.name)))


def _merge(listings: list[VenueListing]) -> list[VenueView]:
    """One view per venue, its providers in the order given; the first listing's facts win."""
    venues: dict[tuple[str, ...], VenueView] = {}
    for listing in listings:
        key = (listing.scenario, names.normalise(listing.city), names.normalise(listing.name))
        seller = VenueProvider(provider_id=listing.provider_id, venue_id=listing.id)
        found = venues.get(key)
        if found is None:
            facts = listing.model_dump(exclude={"provider_id", "id"})
            venues[key] = VenueView(**facts, providers=[seller])
        elif all(p.provider_id != seller.provider_id for p in found.providers):
            found.providers.append(seller)
    return list(venues.values())


async def _listings(core: Core, principal: Principal, scenarios: list[str], city: str | None) -> list[VenueListing]:
    asks = [(provider, VenueQuery(scenario=scenario, city=city))
            for scenario in scenarios
            for provider in core.providers.for_scenario(scenario, key_env=principal.env)
            if isinstance(provider, VenueDirectory)]
    answers = await asyncio.gather(*(_ask(p, q) for p, q in asks), return_exceptions=True)
    if answers and all(isinstance(a, ProviderUnavailable) for a in answers):
        raise answers[0]  # type: ignore[misc]
    listings: list[VenueListing] = []
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, ProviderUnavailable):
            raise answer
        if not isinstance(answer, BaseException):
            listings.extend(answer)
    return listings


async def _ask(provider: VenueDirectory, query: VenueQuery) -> list[VenueListing]:
    """One provider's listings, asked a second time after a transient failure (a dropped keep-alive
    connection), so that one blip does not hide a provider's venues from the answer."""
    try:
        return await provider.search_venues(query)
    except ProviderUnavailable:
        return await provider.search_venues(query)


async def find_venues(core: Core, principal: Principal, wanted: VenueFilters) -> VenuePage:
    """One page of the venues the caller's providers sell that match ``wanted``.

    Raises InvalidRequest (an unknown scenario, flights, a cursor this API did not give),
    Forbidden ``scenario_not_allowed`` (a scenario outside the key's) and ProviderUnavailable
    (every provider asked was down). No venue matching is an empty page, not an error.
    """
    scenarios = _scenarios(principal, wanted.scenario)
    after = pagination.decode(wanted.cursor, _cursor_key) if wanted.cursor else None
    listings = [v for v in await _listings(core, principal, scenarios, wanted.city) if _matches(v, wanted)]
    venues = sorted(_merge(listings), key=_key)
    if after is not None:
        venues = [v for v in venues if _key(v) > after]
    page = venues[:wanted.limit]
    cursor = pagination.encode(_key(page[-1])) if len(venues) > wanted.limit else None
    return VenuePage(venues=page, count=len(page), next_cursor=cursor)
