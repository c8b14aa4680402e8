"""What is bookable: one search across every provider that serves a scenario for the caller.

An agent asks before it books (a table near 19:00, rooms for two nights, seats on a flight).
The answer comes from the same provider adapters the job executor drives, through their
scenario-neutral ``search``, so it shows exactly what a booking or a job could get. Nothing
is held or written: a search changes nothing and is not audited.

Providers that answer over an API are asked; browser-driven ones only when there is no
other, since a search should take milliseconds, not a browser session. A provider that does not sell the venue (or route), that wants a login or a CAPTCHA, or
that cannot be reached is skipped; the others still answer. Only when none could answer
does the search fail: NotFound when no provider serves the venue (with the nearest names
the providers know in ``details.suggestions`` when none knows it at all), Unavailable when
one that might have was down (safe to retry). Names match ignoring case, accents and
apostrophe styles (:func:`errand.kit.names.normalise`).
"""

from datetime import date, datetime
from typing import Any

from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import limits
from errand.kit.core import Core
from errand.kit import names
from errand.kit.errors import InvalidRequest, NotFound
from errand.providers.base import Offer, SearchQuery
from errand.providers.errors import CaptchaRequired, NeedsLogin, ProviderUnavailable, VenueNotServed, VenueUnknown

# What a search must name, per scenario: the venue, or the route for flights.
_REQUIRED = {
    "restaurant": ("venue", "city"),
    "hotel": ("venue", "city", "end_date"),
    "flight": ("origin", "dest"),
    "activity": ("venue", "city"),
}
_NAMES = {"restaurant": "restaurant", "hotel": "hotel", "activity": "event"}


def _check(principal: Principal, query: SearchQuery) -> None:
    if query.scenario not in _REQUIRED:
        raise InvalidRequest(f"scenario: must be one of {', '.join(_REQUIRED)}.",
                             details=[{"field": "scenario", "message": "unknown scenario"}])
    identity_service.require_scenario(principal, query.scenario)
    missing = [f for f in _REQUIRED[query.scenario] if not getattr(query, f)]
    if missing:
        what = f"a {_NAMES[query.scenario]} search" if query.scenario in _NAMES else "a flight search"
        raise InvalidRequest(
            f"{', '.join(missing)}: required for {what}.",
            details=[{"field": f, "message": f"required for {what}"} for f in missing],
        )
    limits.check_quantity(query.scenario, query.quantity, "quantity")
    for field in ("date", "end_date"):
        if getattr(query, field):
            limits.check_date(date.fromisoformat(getattr(query, field)), field)


def _minutes(start: str) -> int:
    moment = datetime.fromisoformat(start)
    return moment.hour * 60 + moment.minute


def _order(query: SearchQuery) -> Any:
    """Nearest to the asked time first (when there is one), then earliest, then cheapest."""
    wanted = int(query.time[:2]) * 60 + int(query.time[3:5]) if query.time else None

    def key(offer: Offer) -> tuple[Any, ...]:
        distance = abs(_minutes(offer.start) - wanted) if wanted is not None and "T" in offer.start else 0
        return distance, offer.start, offer.total_price_usd, offer.provider_id

    return key


async def search_availability(core: Core, principal: Principal, query: SearchQuery) -> list[Offer]:
    """Every offer the caller's providers have for ``query``, nearest to ``query.time`` first.

    Test keys reach sandbox providers only. Raises InvalidRequest (what the scenario needs
    is missing, a quantity over the scenario's limit, a date past everywhere or beyond the
    booking horizon: :mod:`errand.kit.limits`), Forbidden ``scenario_not_allowed``, NotFound
    (no provider serves the venue or route) and Unavailable (a provider that might serve it
    could not be reached). An empty list means the venue is served but nothing fits on that date.
    """
    _check(principal, query)
    providers = [p for p in core.providers.for_scenario(query.scenario, key_env=principal.env) if hasattr(p, "search")]
    # A search is a quick look: drive a browser only when no provider answers over an API.
    providers = [p for p in providers if p.kind == "api"] or providers
    offers: list[Offer] = []
    answered = False
    unavailable: ProviderUnavailable | None = None
    suggestions: list[str] = []
    for provider in providers:
        try:
            found = await provider.search(query)
        except VenueUnknown as exc:
            suggestions += [s for s in exc.suggestions if s not in suggestions]
            continue
        except (VenueNotServed, NeedsLogin, CaptchaRequired):
            continue
        except ProviderUnavailable as exc:
            unavailable = exc
            continue
        answered = True
        offers.extend(found)
    if not answered:
        if unavailable is not None:
            raise unavailable
        target = query.venue or f"{query.origin} → {query.dest}"
        where = f" in {query.city}" if query.city and query.venue else ""
        suggestions = suggestions[:names.MAX_SUGGESTIONS]
        hint = f" Did you mean {' or '.join(suggestions)}?" if suggestions else ""
        raise NotFound(f"No provider available to this key serves {target!r}{where}.{hint}",
                       details={"suggestions": suggestions} if query.venue else None)
    return sorted(offers, key=_order(query))
