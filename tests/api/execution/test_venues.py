"""GET /api/v1/venues: which restaurants, hotels and events the key's providers sell, one entry per venue.

The sandbox's inventory (errand.sandbox.world) is the oracle for what must be listed.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from errand.sandbox.world import load_world
from tests.conftest import Org, Server, free_port, mint_key, running

VENUES = "/api/v1/venues"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def venues(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(VENUES, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def every_page(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await venues(client, **params, **({"cursor": cursor} if cursor else {}))
        assert page["count"] == len(page["venues"]) <= params.get("limit", 20)
        found.extend(page["venues"])
        cursor = page["nextCursor"]
        if cursor is None:
            return found


async def test_restaurants_of_a_city_are_listed_by_name_once_each_with_every_provider_that_sells_them(
    org: Org,
) -> None:
    page = await venues(org.agent, scenario="restaurant", city="Paris", limit=100)
    expected = sorted((r.name for r in load_world().find_restaurants(city="Paris")), key=str.casefold)
    assert [v["name"] for v in page["venues"]] == expected
    assert page["nextCursor"] is None
    by_name = {v["name"]: v for v in page["venues"]}
    # Sandbox Dine does not sell L'Arpège; every restaurant provider sells Septime, in the order a job tries them.
    assert [p["providerId"] for p in by_name["L'Arpège"]["providers"]] == ["sandbox-tables", "web-tables"]
    assert [p["providerId"] for p in by_name["Septime"]["providers"]] == [
        "sandbox-tables", "sandbox-dine", "web-tables"]
    arpege = by_name["L'Arpège"]
    assert arpege["scenario"] == "restaurant" and arpege["city"] == "Paris"
    assert arpege["cuisine"] and arpege["neighborhood"] and arpege["priceBand"] == "$$$$"
    assert arpege["pricePerPersonUsd"] == arpege["priceFromUsd"] > 0 and arpege["priceUnit"] == "person"
    assert arpege["maxPartySize"] >= 1 and arpege["timezone"] == "Europe/Paris"
    assert arpege["providers"][0]["venueId"].startswith("rst_")


async def test_hotels_carry_star_ratings_and_events_their_place(org: Org) -> None:
    hotels = (await venues(org.agent, scenario="hotel", city="new york", limit=100))["venues"]
    assert {h["name"] for h in hotels} == {h.name for h in load_world().find_hotels(city="New York")}
    assert all(h["scenario"] == "hotel" and 1 <= h["starRating"] <= 5 and h["priceUnit"] == "night"
               for h in hotels)
    events = (await venues(org.agent, scenario="activity", city="London"))["venues"]
    assert {e["name"] for e in events} == {e.name for e in load_world().find_events(city="London")}
    assert all(e["place"] and e["category"] and e["priceUnit"] == "ticket" for e in events)


async def test_name_search_ignores_case_accents_and_apostrophe_styles(org: Org) -> None:
    for q in ("L'Arpège", "l’arpege", "L'ARPEGE", "arpe"):
        found = (await venues(org.agent, q=q))["venues"]
        assert [v["name"] for v in found] == ["L'Arpège"], q
    assert (await venues(org.agent, q="Nowhere Diner"))["venues"] == []


async def test_cuisine_and_neighborhood_filters_narrow_the_list(org: Org) -> None:
    world = load_world()
    italian = (await venues(org.agent, cuisine="ITALIAN", city="New York", limit=100))["venues"]
    assert {v["name"] for v in italian} == {
        r.name for r in world.find_restaurants(city="New York") if r.cuisine == "Italian"}
    assert italian
    some = world.find_restaurants(city="New York")[0]
    here = (await venues(org.agent, scenario="restaurant", neighborhood=some.neighborhood.lower()))["venues"]
    assert some.name in {v["name"] for v in here}
    assert all(v["neighborhood"] == some.neighborhood for v in here)


async def test_pages_follow_each_other_without_gaps_or_repeats(org: Org) -> None:
    whole = (await venues(org.agent, scenario="restaurant", limit=100))["venues"]
    assert len(whole) == len(load_world().restaurants)
    paged = await every_page(org.agent, scenario="restaurant", limit=7)
    assert paged == whole
    first = await venues(org.agent, scenario="restaurant", limit=7)
    assert first["count"] == 7 and first["nextCursor"]
    assert [(v["city"], v["name"]) for v in whole] == sorted(
        ((v["city"], v["name"]) for v in whole), key=lambda cn: (cn[0].casefold(), cn[1].casefold()))


async def test_without_a_scenario_every_venue_scenario_of_the_key_is_listed(org: Org) -> None:
    every = await every_page(org.agent, limit=100)
    world = load_world()
    assert {v["scenario"] for v in every} == {"restaurant", "hotel", "activity"}
    assert len(every) == len(world.restaurants) + len(world.hotels) + len(world.events)


async def test_a_key_sees_only_its_scenarios(server: Server, org: Org) -> None:
    hotels_only = await mint_key(server, org.name, scenarios=["hotel"])
    async with httpx.AsyncClient(base_url=server.base_url, headers=bearer(hotels_only), timeout=30) as client:
        refused = await client.get(VENUES, params={"scenario": "restaurant"})
        listed = await every_page(client, limit=100)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "scenario_not_allowed"
    assert listed and {v["scenario"] for v in listed} == {"hotel"}


async def test_a_test_key_sees_sandbox_providers_only(server: Server, org: Org) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, headers=bearer(org.test_key), timeout=30) as client:
        listed = await every_page(client, limit=100)
        providers = (await client.get("/api/v1/providers")).json()["providers"]
    sandbox = {p["id"] for p in providers if p["sandbox"]}
    sellers = {p["providerId"] for v in listed for p in v["providers"]}
    assert listed and sellers <= sandbox


@pytest.mark.parametrize(("params", "path"), [
    ({"q": "x" * 10_000}, "q"),
    ({"city": "y" * 201}, "city"),
    ({"scenario": "spaceship"}, "scenario"),
    ({"scenario": "flight"}, "scenario"),
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"q": "tab\there"}, "query"),  # refused by the input boundary before the route
])
async def test_hostile_or_malformed_queries_are_invalid_requests(
    org: Org, params: dict[str, str], path: str
) -> None:
    response = await org.agent.get(VENUES, params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert path in {d["path"] for d in error.get("details", [])}, error


async def test_a_nul_in_the_query_is_refused_at_the_boundary(org: Org) -> None:
    response = await org.agent.get(VENUES + "?q=a%00b")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"


async def test_venues_need_a_key(anon: httpx.AsyncClient) -> None:
    response = await anon.get(VENUES)
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_authorization"


async def test_empty_parameters_count_as_absent(org: Org) -> None:
    empty = await org.agent.get(VENUES + "?scenario=&city=&q=&cuisine=&neighborhood=&limit=&cursor=")
    assert empty.status_code == 200, empty.text
    assert empty.json() == await venues(org.agent)


HOTEL_PROVIDERS = ("sandbox-stays", "sandbox-rooms", "web-stays")


@pytest.fixture(scope="module")
async def half_down_url(server: Server) -> AsyncIterator[str]:
    """A server on ``server``'s database whose sandbox fails every call to Sandbox Dine and to every hotel provider."""
    down = {"error_rate": 1.0}
    settings = server.settings.model_copy(update={
        "port": free_port(), "sandbox_faults": {p: down for p in ("sandbox-dine", *HOTEL_PROVIDERS)}})
    async with running(settings) as base_url:
        yield base_url


async def test_a_provider_that_is_down_is_left_out_and_all_down_is_unavailable(half_down_url: str, org: Org) -> None:
    async with httpx.AsyncClient(base_url=half_down_url, headers=bearer(org.agent_key), timeout=30) as client:
        restaurants = await client.get(VENUES, params={"scenario": "restaurant", "city": "Paris", "limit": 100})
        hotels = await client.get(VENUES, params={"scenario": "hotel"})
    assert restaurants.status_code == 200, restaurants.text
    septime = next(v for v in restaurants.json()["venues"] if v["name"] == "Septime")
    assert [p["providerId"] for p in septime["providers"]] == ["sandbox-tables", "web-tables"]
    assert hotels.status_code == 503, hotels.text
    assert hotels.json()["error"]["code"] == "provider_unavailable"
