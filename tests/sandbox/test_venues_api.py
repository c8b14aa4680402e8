"""GET /sandbox/api/{provider}/venues and the adapters' search_venues: what each provider sells, over HTTP."""

from collections.abc import AsyncIterator

import httpx
import pytest

from errand.providers.base import VenueDirectory, VenueQuery
from errand.providers.browser.sites import WebTickets
from errand.providers.sandbox import SandboxApiProvider
from errand.sandbox.world import load_world
from tests.sandbox.conftest import SETTINGS


@pytest.fixture
async def web_tickets(sandbox_url: str) -> AsyncIterator[WebTickets]:
    provider = WebTickets(SETTINGS.model_copy(update={"sandbox_url": sandbox_url}))
    try:
        yield provider
    finally:
        await provider.aclose()


async def test_an_adapter_lists_the_venues_its_provider_sells(providers: dict[str, SandboxApiProvider]) -> None:
    dine = providers["sandbox-dine"]
    assert isinstance(dine, VenueDirectory)
    paris = await dine.search_venues(VenueQuery(scenario="restaurant", city="paris"))
    names = {v.name for v in paris}
    assert "Septime" in names and "L'Arpège" not in names  # Sandbox Dine does not sell L'Arpège
    assert names == {r.name for r in load_world().find_restaurants(city="Paris")} - {"L'Arpège"}
    septime = next(v for v in paris if v.name == "Septime")
    assert septime.provider_id == "sandbox-dine" and septime.scenario == "restaurant" and septime.city == "Paris"
    assert septime.cuisine and septime.neighborhood and septime.price_per_person_usd and septime.price_band


async def test_hotels_and_events_carry_their_own_facts(providers: dict[str, SandboxApiProvider]) -> None:
    hotels = await providers["sandbox-stays"].search_venues(VenueQuery(scenario="hotel"))
    assert {h.id for h in hotels} == set(load_world().hotels) - {"htl_hotel-zetta-san-francisco"}
    assert all(h.star_rating and h.price_unit == "night" and h.price_from_usd for h in hotels)
    events = await providers["sandbox-tickets"].search_venues(VenueQuery(scenario="activity", city="New York"))
    assert events and all(e.place and e.category and e.price_unit == "ticket" for e in events)


async def test_a_scenario_the_provider_does_not_sell_lists_nothing(providers: dict[str, SandboxApiProvider]) -> None:
    assert await providers["sandbox-stays"].search_venues(VenueQuery(scenario="restaurant")) == []
    assert await providers["sandbox-air"].search_venues(VenueQuery(scenario="flight")) == []


async def test_a_web_only_site_lists_its_venues_without_a_browser(web_tickets: WebTickets) -> None:
    paris = await web_tickets.search_venues(VenueQuery(scenario="activity", city="Paris"))
    assert "evt_louvre-night-tour-paris" in {e.id for e in paris}  # sold by the web site only
    assert {e.provider_id for e in paris} == {"web-tickets"}


async def test_the_venues_api_admits_only_the_providers_credential(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as client:
        anonymous = await client.get("/api/sandbox-tables/venues")
        other = await client.get("/api/sandbox-tables/venues",
                                 headers={"Authorization": f"Bearer {SETTINGS.sandbox_api_token('sandbox-dine')}"})
        mine = await client.get("/api/sandbox-tables/venues", params={"scenario": "spaceship"},
                                headers={"Authorization": f"Bearer {SETTINGS.sandbox_api_token('sandbox-tables')}"})
    assert anonymous.status_code == 401 and other.status_code == 401
    assert mine.status_code == 400 and mine.json()["error"] == "invalid"
