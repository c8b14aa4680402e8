"""The sandbox's front page, ``GET /sandbox/``: which providers it runs, how each is reached, what each sells.

Server-rendered HTML with the web sites' page shell (:func:`errand.sandbox.web.html.page`: no
script, no CDN; the app's anti-framing headers apply), for people who follow the README's
pointer and for tests. It reads only the packaged catalog and inventory, never the database.
Per provider: its id (what ``allowedProviders`` and metrics name), scenarios, how it is
reached (its JSON API, which admits only Errand, or its booking web site, linked), and the
venues it sells per city (flight providers: the routes they fly).
"""

from collections import defaultdict
from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from errand.sandbox.catalog import Provider, load_catalog
from errand.sandbox.common import absolute_url
from errand.sandbox.venues import listings
from errand.sandbox.web.html import esc, link, page
from errand.sandbox.world import load_world

_SCENARIO_WORDS = {"restaurant": "restaurants", "hotel": "hotels", "flight": "flights", "activity": "events"}


def _by_city(items: Iterable[tuple[str, str]]) -> str:
    """``(city, html item)`` pairs as one list per city, cities in order of name."""
    cities: dict[str, list[str]] = defaultdict(list)
    for city, item in items:
        cities[city].append(item)
    return "".join(
        f'<h4>{esc(city)}</h4><ul class="city" data-city="{esc(city)}">{"".join(cities[city])}</ul>'
        for city in sorted(cities)
    )


def _venues(provider: Provider) -> str:
    def item(v: dict[str, object]) -> str:
        facts = [v.get(k) for k in ("neighborhood", "cuisine", "category", "place")]
        stars = f"{v['star_rating']}★" if v.get("star_rating") else None
        words = " · ".join(str(f) for f in (*facts, stars, v.get("price_band")) if f)
        return f'<li data-venue-id="{esc(v["id"])}"><strong>{esc(v["name"])}</strong> — {esc(words)}</li>'

    return _by_city((str(v["city"]), item(v)) for v in listings(provider))


def _routes(provider: Provider) -> str:
    flights: dict[tuple[str, str], list[str]] = defaultdict(list)
    for flight in load_world().flights.values():
        if provider.serves((flight.number, flight.route)):
            flights[(flight.origin_city, flight.dest_city)].append(flight.number)
    return _by_city(
        (origin, f'<li data-route="{esc(origin)}-{esc(dest)}">{esc(origin)} → {esc(dest)}: '
                 f'{esc(", ".join(sorted(numbers)))}</li>')
        for (origin, dest), numbers in flights.items()
    )


def _reached(request: Request, provider: Provider) -> str:
    if provider.is_browser:
        url = absolute_url(request, "web_home", provider_id=provider.id)
        return "web site " + link(url, url, f"site-{provider.id}")
    api = request.app.state.public_url + f"/api/{provider.id}/"
    return f"JSON API <code>{esc(api)}</code> (Errand's credential only)"


def _reached_in_short(request: Request, provider: Provider) -> str:
    if provider.is_browser:
        return link(absolute_url(request, "web_home", provider_id=provider.id), "web site")
    return "JSON API"


def _provider(request: Request, provider: Provider) -> str:
    sells = ", ".join(_SCENARIO_WORDS[s] for s in provider.scenarios)
    gate = "stops at a payment page" if provider.card_gate else "books outright"
    listed = _routes(provider) if provider.scenarios == ("flight",) else _venues(provider)
    return (
        f'<section class="provider" id="provider-{esc(provider.id)}" data-provider="{esc(provider.id)}" '
        f'data-kind="{esc(provider.kind)}" data-scenarios="{esc(" ".join(provider.scenarios))}">'
        f"<h3>{esc(provider.display_name)} <code>{esc(provider.id)}</code></h3>"
        f"<p>Sells {esc(sells)}; {esc(gate)}. Reached through its {_reached(request, provider)}.</p>"
        f"{listed}</section>"
    )


def routes() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/", name="sandbox_index")
    async def index(request: Request) -> HTMLResponse:
        providers = list(load_catalog().values())
        rows = "".join(
            f'<tr data-provider="{esc(p.id)}"><td><a href="#provider-{esc(p.id)}">{esc(p.id)}</a></td>'
            f"<td>{esc(p.display_name)}</td><td>{esc(', '.join(p.scenarios))}</td>"
            f"<td>{_reached_in_short(request, p)}</td></tr>"
            for p in providers
        )
        body = (
            "<p>Test-mode restaurants, hotels, flights and events that behave like real booking systems: "
            "capacity, holds, payment pages, login walls and CAPTCHAs. Errand reaches the API providers "
            "over their JSON APIs and the web-only ones through their web sites, with a real browser. "
            "Pay on a sandbox payment page with the test card <code>4242 4242 4242 4242</code>.</p>"
            '<h2>Providers</h2><table id="providers"><thead><tr><th>id</th><th>name</th><th>scenarios</th>'
            f"<th>reached through</th></tr></thead><tbody>{rows}</tbody></table>"
            "<h2>What each sells</h2>" + "".join(_provider(request, p) for p in providers)
        )
        return page(None, "sandbox-index", "Errand sandbox marketplace", body,
                    home=request.app.state.public_url + "/")

    return router
