"""The sandbox's front page, GET /sandbox/: every provider, how it is reached, what it sells; links that work."""

import re
from html.parser import HTMLParser

import httpx

from errand.sandbox.catalog import load_catalog
from errand.sandbox.world import load_world
from tests.conftest import Org, Server


class Page(HTMLParser):
    """The links, resources and provider sections of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.resources: list[str] = []
        self.sections: dict[str, dict[str, str | None]] = {}
        self.venue_ids: dict[str, set[str]] = {}
        self._section: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
        if tag in ("script", "img", "link", "iframe", "object", "embed"):
            self.resources.append(tag)
        if tag == "section" and found.get("data-provider"):
            self._section = str(found["data-provider"])
            self.sections[self._section] = found
            self.venue_ids[self._section] = set()
        if tag == "li" and found.get("data-venue-id") and self._section:
            self.venue_ids[self._section].add(str(found["data-venue-id"]))


async def index(anon: httpx.AsyncClient) -> tuple[httpx.Response, Page]:
    response = await anon.get("/sandbox/")
    page = Page()
    page.feed(response.text)
    return response, page


async def test_the_index_is_a_page_that_cannot_be_framed_and_loads_nothing_from_elsewhere(
    anon: httpx.AsyncClient,
) -> None:
    response, page = await index(anon)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert page.resources == []  # no script, stylesheet, image or frame: nothing from a CDN


async def test_the_index_lists_every_provider_with_its_scenarios_and_kind(
    anon: httpx.AsyncClient, org: Org
) -> None:
    _, page = await index(anon)
    providers = (await org.agent.get("/api/v1/providers")).json()["providers"]
    catalog = load_catalog()
    assert set(page.sections) == set(catalog)
    assert {p["id"] for p in providers} <= set(page.sections)
    for provider_id, section in page.sections.items():
        assert section["data-kind"] == catalog[provider_id].kind
        assert section["data-scenarios"] == " ".join(catalog[provider_id].scenarios)


async def test_the_index_lists_the_venues_each_provider_sells(anon: httpx.AsyncClient) -> None:
    response, page = await index(anon)
    world = load_world()
    assert page.venue_ids["sandbox-tables"] == set(world.restaurants) - {"rst_via-carota-new-york"}
    assert "rst_l-arpege-paris" not in page.venue_ids["sandbox-dine"]
    assert page.venue_ids["web-stays"] == set(world.hotels)
    assert page.venue_ids["sandbox-tickets"] == set(world.events) - {"evt_louvre-night-tour-paris"}
    assert page.venue_ids["sandbox-air"] == set()  # flights: routes, not venues
    assert re.search(r'data-route="New York-San Francisco"', response.text)
    for city in world.cities:
        assert f'data-city="{city}"' in response.text


async def test_every_link_on_the_index_answers(server: Server, anon: httpx.AsyncClient) -> None:
    _, page = await index(anon)
    sites = [link for link in page.links if not link.startswith("#")]
    assert {f"{server.base_url}/sandbox/web/{p}/" for p in load_catalog() if p.startswith("web-")} <= set(sites)
    for link in page.links:
        if link.startswith("#"):
            assert link[1:].removeprefix("provider-") in page.sections, link
            continue
        assert link.startswith(server.base_url), link  # nothing points elsewhere
        answer = await anon.get(link)
        assert answer.status_code == 200, link


async def test_a_method_the_front_page_does_not_take_is_405_with_allow(anon: httpx.AsyncClient) -> None:
    response = await anon.delete("/sandbox/")

    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
