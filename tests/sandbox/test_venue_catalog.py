"""find_venue from the provider's cached catalog: the sandbox's own answers, without a call per lookup.

The SandboxTables adapter fetches the restaurant listing once and answers lookups from it
(errand.providers.catalog); these tests hold it to what the sandbox's ``GET /restaurants``
answers for the same name and city, and check how the copy is kept and refreshed.
"""

from collections.abc import Sequence
from datetime import datetime

import httpx
import pytest

from errand.kit.db import Database
from errand.providers.base import Guest, Venue
from errand.providers.errors import ProviderUnavailable, VenueUnknown
from errand.providers.catalog import VenueCatalog
from errand.providers.sandbox import SandboxTables
from tests.sandbox.conftest import SETTINGS, serving

LOOKUPS = [
    ("Le Bernardin", "New York"), ("le bernardin", "NEW YORK"), ("  Le   Bernardin ", " new york "),
    ("L’Arpege", "Paris"), ("L'Arpège", "paris"), ("Le Bernadin", "New York"), ("Le Bernardin", "Paris"),
    ("Le Bernardin", "Nwe York"), ("Le Bernardin", ""), ("Carbone", "New York"), ("Carbon", "New York"),
    ("Septime", "Paris"), ("Septim", "London"), ("Nowhere at all", "New York"), ("", "New York"),
    ("Via Carota", "New York"), ("Dishoom", "London"), ("Dishom", "Londn"), ("x" * 300, "Paris"),
]


@pytest.mark.parametrize(("name", "city"), LOOKUPS)
async def test_a_lookup_answers_as_the_sandbox_lookup_does(
    tables: SandboxTables, http: httpx.AsyncClient, name: str, city: str
) -> None:
    response = await http.get("/restaurants", params={"name": name, "city": city})
    assert response.status_code == 200, response.text
    expected = response.json()
    try:
        venue = await tables.find_venue(name, city)
    except VenueUnknown as unknown:
        assert expected["restaurants"] == []
        assert unknown.suggestions == expected.get("suggestions", [])
        assert unknown.code == "unknown_venue"
        return
    assert venue is not None
    first = expected["restaurants"][0]
    assert venue.model_dump(mode="json") == Venue.model_validate(first).model_dump(mode="json")


async def test_the_catalog_is_fetched_once_and_booking_is_the_only_call(db: Database) -> None:
    """Once the listing is in, a lookup needs no provider: it still answers while the provider is down."""
    async with serving(db) as url:
        tables = SandboxTables(SETTINGS.model_copy(update={"sandbox_url": url}))
        first = await tables.find_venue("Le Bernardin", "New York")
        assert first is not None and first.id == "rst_le-bernardin-new-york"
    try:
        venue = await tables.find_venue("le bernardin", "new york")
        assert venue is not None and venue.id == "rst_le-bernardin-new-york"
        with pytest.raises(VenueUnknown) as unknown:
            await tables.find_venue("Le Bernadin", "New York")
        assert unknown.value.suggestions == ["Le Bernardin"]
        with pytest.raises(ProviderUnavailable):  # the booking call itself goes to the (gone) provider
            await tables.book(venue.id, datetime(2027, 3, 3, 19, 0), 2, Guest(name="Ada"), idempotency_key="gone-1")
    finally:
        await tables.aclose()


async def test_a_provider_never_reached_is_unavailable(db: Database) -> None:
    async with serving(db) as url:
        pass  # nothing listens at url any more
    tables = SandboxTables(SETTINGS.model_copy(update={"sandbox_url": url}))
    try:
        with pytest.raises(ProviderUnavailable):
            await tables.find_venue("Le Bernardin", "New York")
    finally:
        await tables.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Listing:
    """A provider's listing that can be changed or taken down, counting the fetches."""

    def __init__(self, venues: Sequence[Venue]) -> None:
        self.venues, self.down, self.fetches = list(venues), False, 0

    async def __call__(self) -> list[Venue]:
        self.fetches += 1
        if self.down:
            raise ProviderUnavailable("sandbox-tables", "down")
        return list(self.venues)


def venue(name: str, city: str = "Paris") -> Venue:
    return Venue(id=f"rst_{name.lower()}", name=name, city=city, timezone="Europe/Paris")


async def test_the_copy_is_refreshed_after_its_ttl_and_served_stale_for_a_bounded_time_while_refreshes_fail() -> None:
    clock, listing = Clock(), Listing([venue("Septime")])
    catalog = VenueCatalog("sandbox-tables", listing, ttl_seconds=300, stale_for_seconds=900, retry_seconds=10,
                           timer=clock)
    assert (await catalog.find("septime", "paris")).id == "rst_septime"
    clock.now += 299
    await catalog.find("Septime", "Paris")
    assert listing.fetches == 1  # fresh: no fetch

    listing.venues.append(venue("Frenchie"))
    clock.now += 2  # expired: the next lookup fetches again and sees the new venue
    assert (await catalog.find("Frenchie", "Paris")).id == "rst_frenchie"
    assert listing.fetches == 2

    listing.down = True
    clock.now += 301  # expired, and the refresh fails: the earlier copy is served
    assert (await catalog.find("Frenchie", "Paris")).id == "rst_frenchie"
    assert listing.fetches == 3
    clock.now += 5  # within the retry pause: no new attempt
    await catalog.find("Septime", "Paris")
    assert listing.fetches == 3
    clock.now += 10  # the pause is over: one more attempt, still failing, still served
    await catalog.find("Septime", "Paris")
    assert listing.fetches == 4

    clock.now += 900  # past the bound (ttl + stale_for since the last fetch): the failure surfaces
    with pytest.raises(ProviderUnavailable):
        await catalog.find("Septime", "Paris")

    listing.down = False  # and the provider back up is fetched at once
    assert (await catalog.find("Septime", "Paris")).id == "rst_septime"


async def test_without_an_earlier_copy_a_failed_fetch_is_raised_and_retried_next_time() -> None:
    clock, listing = Clock(), Listing([venue("Septime")])
    listing.down = True
    catalog = VenueCatalog("sandbox-tables", listing, timer=clock)
    with pytest.raises(ProviderUnavailable):
        await catalog.find("Septime", "Paris")
    listing.down = False
    assert (await catalog.find("Septime", "Paris")).id == "rst_septime"
    assert listing.fetches == 2


async def test_a_found_venue_is_a_copy_the_caller_may_change() -> None:
    catalog = VenueCatalog("sandbox-tables", Listing([venue("Septime")]))
    found = await catalog.find("Septime", "Paris")
    found.name = "Changed"
    assert (await catalog.find("Septime", "Paris")).name == "Septime"
