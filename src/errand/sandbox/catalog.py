"""The sandbox's providers and the obstacles they put in front of the job API.

Read once from the packaged ``providers.json``, which is deterministic on purpose: tests
and benchmarks can rely on which venue meets which obstacle at which provider. Random
faults (latency, error rates) are configured per app instance instead
(:mod:`errand.sandbox.faults`). The reservations API of sandbox-tables meets none of this.

Providers, in the order a fallback chain should try them (the adapters' ``priority``):

- restaurant: sandbox-tables (card gate: stops at payment), then sandbox-dine (no card
  gate: completes; does not sell four of the most expensive restaurants);
- hotel: sandbox-stays (card gate), then sandbox-rooms (no card gate: pay at the hotel);
- flight: sandbox-air, then sandbox-fares (both card-gated);
- activity: sandbox-tickets (card gate), alone.

Besides, one web-only provider per scenario (``"kind": "browser"``: web-tables, web-stays,
web-air, web-tickets, all card-gated) is reached only through its booking web site
(:mod:`errand.sandbox.web`); its job API answers 404. Its obstacles meet a visitor at the
details step, and ``sold_out_while_typing`` venues lose the first offer a visitor chooses.
Their test venues are listed in docs/sandbox-web.md.

Venues to test the job executor with, for (a) served normally, (b) a login wall at the
first provider but fine at the second, (c) a CAPTCHA everywhere, (d) a login wall
everywhere, (e) flaky twice at the first provider, (f) not served by the first provider:

- restaurant, New York: (a) Le Bernardin, Carbone and most others; (b) Gramercy Tavern;
  (c) Peter Luger; (d) Tatiana; (e) Balthazar; (f) Via Carota.
- hotel: (a) The Plaza; (b) Ace Hotel New York; (c) The Greenwich Hotel; (d) Pod 51;
  (e) The Standard High Line; (f) Hotel Zetta (San Francisco).
- flight, by route (airport codes or city names): (a) New York → San Francisco (UA107
  LGA-SFO, UA15 JFK-SFO, …) and most others; (b) New York → Tokyo; (c) San Francisco →
  Tokyo; (d) Tokyo → Paris; (e) London → Paris; (f) Chicago → Paris.
- activity (one provider, so (b) and (f) cannot fall back): (a) Hamilton; (c) Knicks vs
  Celtics; (d) New York Philharmonic; (e) The Lion King; (f) Louvre Night Tour (Paris).

A flight search meets the obstacles of its route and leaves out the flight numbers the
provider does not serve; a checkout meets those of its route and of its flight number.
"""

import json
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit.crypto import sha256_hex
from errand.kit.errors import NotFound
from errand.sandbox import inventory
from errand.sandbox.errors import CaptchaRequired, LoginRequired, NotServed
from errand.sandbox.world import load_world

SCENARIOS = ("restaurant", "hotel", "flight", "activity")


@dataclass(frozen=True)
class Provider:
    """One sandbox provider: what it sells and what stands in the way (see the module doc)."""

    id: str
    display_name: str
    scenarios: tuple[str, ...]
    card_gate: bool
    kind: str = "api"
    reservations_api: bool = False
    not_served: frozenset[str] = frozenset()
    login_wall: frozenset[str] = frozenset()
    captcha: frozenset[str] = frozenset()
    flaky: dict[str, int] = field(default_factory=dict)
    sold_out_while_typing: frozenset[str] = frozenset()

    @property
    def is_browser(self) -> bool:
        """Reached only through its multi-page web site (:mod:`errand.sandbox.web`), never its job API."""
        return self.kind == "browser"

    def serves(self, keys: tuple[str, ...]) -> bool:
        return self.not_served.isdisjoint(keys)

    def sells(self, keys: tuple[str, ...]) -> bool:
        """Served and not walled: what a venue switch may pick at this provider."""
        return self.serves(keys) and self.login_wall.isdisjoint(keys) and self.captcha.isdisjoint(keys)

    def refuse(self, keys: tuple[str, ...], what: str) -> None:
        """Raise the obstacle ``what`` (a venue or route, for the message) meets here, if any."""
        if not self.serves(keys):
            raise NotServed(f"{self.display_name} does not sell {what}.")
        if not self.captcha.isdisjoint(keys):
            raise CaptchaRequired(f"{self.display_name} shows a CAPTCHA before {what}.")
        if not self.login_wall.isdisjoint(keys):
            raise LoginRequired(f"{self.display_name} asks to sign in before {what}.")

    def is_flaky(self, keys: tuple[str, ...]) -> bool:
        return not self.flaky.keys().isdisjoint(keys)

    async def fails_flakily(self, session: AsyncSession, keys: tuple[str, ...], call_key: str) -> bool:
        """Count a call to a flaky venue; True while it is among the first N with ``call_key``.

        The count lives in a ``sandbox_slots`` row (capacity N, one per venue, provider and
        call key) so that every process serving the sandbox agrees on it; the caller
        commits it before failing the request.
        """
        key = next(k for k in keys if k in self.flaky)
        failures = self.flaky[key]
        unit, slot = f"flaky:{self.id}", sha256_hex(call_key)[:32]
        await inventory.ensure_slots(session, key, unit, failures, [slot])
        return await inventory.shift(session, key, unit, slot, 1)


def _known_keys(scenarios: tuple[str, ...]) -> set[str]:
    world = load_world()
    known: dict[str, set[str]] = {
        "restaurant": set(world.restaurants),
        "hotel": set(world.hotels),
        "flight": set(world.flights) | {f.route for f in world.flights.values()},
        "activity": set(world.events),
    }
    return set().union(*(known[s] for s in scenarios))


def _provider(raw: dict[str, Any]) -> Provider:
    scenarios = tuple(raw["scenarios"])
    provider = Provider(
        id=raw["id"], display_name=raw["display_name"], scenarios=scenarios, card_gate=raw["card_gate"],
        kind=raw.get("kind", "api"), reservations_api=raw.get("reservations_api", False),
        not_served=frozenset(raw.get("not_served", [])), login_wall=frozenset(raw.get("login_wall", [])),
        captcha=frozenset(raw.get("captcha", [])), flaky=dict(raw.get("flaky", {})),
        sold_out_while_typing=frozenset(raw.get("sold_out_while_typing", [])),
    )
    if not set(scenarios) <= set(SCENARIOS) or provider.kind not in ("api", "browser"):
        raise ValueError(f"providers.json: {provider.id} lists an unknown scenario or kind")
    if provider.is_browser and (provider.flaky or provider.reservations_api or len(scenarios) != 1):
        raise ValueError(f"providers.json: browser provider {provider.id} must sell one scenario, with no API")
    named = (provider.not_served | provider.login_wall | provider.captcha | set(provider.flaky)
             | provider.sold_out_while_typing)
    unknown = named - _known_keys(scenarios)
    if unknown or any(n < 1 for n in provider.flaky.values()):
        raise ValueError(f"providers.json: {provider.id} names unknown venues {sorted(unknown)} or a bad flaky count")
    return provider


@cache
def load_catalog() -> dict[str, Provider]:
    """Parse the packaged catalog once per process; a malformed file fails at first use."""
    raw = json.loads(files("errand.sandbox").joinpath("providers.json").read_text(encoding="utf-8"))
    return {p.id: p for p in (_provider(p) for p in raw["providers"])}


def require(provider_id: str) -> Provider:
    provider = load_catalog().get(provider_id)
    if provider is None:
        raise NotFound(f"There is no sandbox provider {provider_id!r}.")
    return provider


def require_api(provider_id: str) -> Provider:
    """A provider with a job API: the web-only ones answer 404, as a site without an API would."""
    provider = require(provider_id)
    if provider.is_browser:
        raise NotFound(f"{provider.display_name} has no API; book on its web site at /web/{provider_id}/.")
    return provider


def require_browser(provider_id: str) -> Provider:
    """A provider that runs a booking web site."""
    provider = require(provider_id)
    if not provider.is_browser:
        raise NotFound(f"There is no sandbox web site {provider_id!r}.")
    return provider


def require_reservations(provider_id: str) -> Provider:
    """A provider that also runs the partner reservations API (restaurants, no obstacles)."""
    provider = require(provider_id)
    if not provider.reservations_api:
        raise NotFound(f"There is no sandbox restaurant provider {provider_id!r}.")
    return provider
