"""Choosing the offer a job books from what a provider has, within the user's consent.

Exact matches win. Otherwise, where the user allowed it, the nearest time within
``maxTimeAdjustmentMinutes`` (restaurants: the slot; flights: the departure). Budgets
(budget_per_person, budget_max_per_night, budget_max_per_ticket, targetPrice) are hard
limits on the unit price; preferences (room, cabin, airline, flight number, seat type)
narrow the choice when they can be met.

A venue switch goes only to a venue like the one asked for (:func:`likeness`): like it by
what the request states of the kind of venue (:data:`LIKENESS`: cuisine, neighborhood,
star rating, budget), or, when it states none of that, like the original venue itself (same
cuisine / star rating / event category, and a price within :data:`PRICE_BAND` of its own).
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from errand.kit import names
from errand.providers.base import Offer, SearchQuery, VenueFacts

# The request fields that say what kind of venue the user wants; a venue switch keeps to those stated.
LIKENESS: dict[str, tuple[str, ...]] = {
    "restaurant": ("cuisine", "neighborhood", "budget_per_person"),
    "hotel": ("star_rating", "neighborhood", "budget_max_per_night"),
    "activity": ("budget_max_per_ticket",),
}
# When the request states none of them, the original venue's kind stands in for them.
ORIGINAL_KIND: dict[str, tuple[str, ...]] = {
    "restaurant": ("cuisine",), "hotel": ("star_rating",), "activity": ("category",),
}
# ... with its price: an alternative costs from 1/1.5 to 1.5 times the original's unit price
# (Le Bernardin, 225 a head: 150 to 337.50), so a switch neither surprises the bill nor downgrades.
PRICE_BAND = Decimal("1.5")


@dataclass
class Choice:
    offer: Offer | None
    from_time: str | None = None  # set when the time was adjusted
    to_time: str | None = None
    reason: str | None = None  # why nothing was chosen: no_offers | over_budget | no_time_in_window


def query_for(scenario: str, params: dict[str, Any]) -> SearchQuery:
    if scenario == "restaurant":
        return SearchQuery(scenario=scenario, city=params["city"], venue=params["restaurant_name"],
                           date=params["date"], time=params["time"], quantity=params["covers"],
                           preferences={k: params[k] for k in ("cuisine", "neighborhood") if k in params})
    if scenario == "hotel":
        return SearchQuery(scenario=scenario, city=params["city"], venue=params["hotel_name"],
                           date=params["checkin"], end_date=params["checkout"], quantity=params["adults"],
                           preferences={k: params[k] for k in ("star_rating", "neighborhood", "room_preference")
                                        if k in params})
    if scenario == "flight":
        return SearchQuery(scenario=scenario, origin=params["origin"], dest=params["dest"], date=params["date"],
                           time=params.get("targetDepartureTime"), quantity=params["passengers"],
                           preferences={k: params[k] for k in ("cabin_class", "targetAirline", "targetFlightNumber")
                                        if k in params})
    return SearchQuery(scenario=scenario, city=params["city"], venue=params["event_name"], date=params["event_date"],
                       quantity=params["num_tickets"],
                       preferences={k: params[k] for k in ("seat_type",) if k in params})


@dataclass
class Likeness:
    """What an alternative venue must share with the request (or the original venue) to be switched to."""

    attributes: dict[str, Any] = field(default_factory=dict)  # offer attribute -> the value it must have
    price_range: tuple[Decimal, Decimal] | None = None  # inclusive bounds on the offer's unit price
    basis: str = ""  # for the decision log: "same cuisine", "same cuisine and price band as Le Bernardin"

    def fits(self, offer: Offer) -> bool:
        if not all(names.same(str(offer.attributes.get(k, "")), str(v)) for k, v in self.attributes.items()):
            return False
        low, high = self.price_range or (Decimal(0), Decimal("Infinity"))
        return low <= offer.unit_price_usd <= high


def likeness(scenario: str, params: dict[str, Any], original: VenueFacts | None) -> Likeness | None:
    """What a switch must keep, or None when nothing is known to compare with (then there is no switch).

    The request's stated fields of :data:`LIKENESS` decide alone (budgets are limits :func:`choose`
    enforces); without any, the original venue's :data:`ORIGINAL_KIND` and :data:`PRICE_BAND`,
    as a provider describes it (``original``). Flights never switch (None).
    """
    fields = LIKENESS.get(scenario)
    if fields is None:
        return None
    stated = [f for f in fields if params.get(f) is not None]
    if stated:
        return Likeness({f: params[f] for f in stated if not f.startswith("budget")},
                        basis=", ".join("within budget" if f.startswith("budget") else "same " + f.replace("_", " ")
                                        for f in stated))
    if original is None:
        return None
    kind = {f: original.attributes[f] for f in ORIGINAL_KIND[scenario] if original.attributes.get(f) is not None}
    if not kind:
        return None
    price = original.price_usd
    band = (price / PRICE_BAND, price * PRICE_BAND) if price else None
    what = " and ".join([*(f.replace("_", " ") for f in kind), *(["price band"] if band else [])])
    return Likeness(kind, band, basis=f"same {what} as {original.venue_name}")


def _budget(scenario: str, params: dict[str, Any]) -> float | None:
    key = {"restaurant": "budget_per_person", "hotel": "budget_max_per_night", "flight": "targetPrice",
           "activity": "budget_max_per_ticket"}[scenario]
    return params.get(key)


def _minutes(start: str) -> int:
    moment = datetime.fromisoformat(start)
    return moment.hour * 60 + moment.minute


def _hhmm(start: str) -> str:
    return datetime.fromisoformat(start).strftime("%H:%M")


def _matches(value: str | None, *candidates: str) -> bool:
    return value is not None and any(names.normalise(value) in names.normalise(c) for c in candidates if c)


def choose(scenario: str, params: dict[str, Any], consent: dict[str, Any], offers: list[Offer]) -> Choice:
    if not offers:
        return Choice(None, reason="no_offers")
    budget = _budget(scenario, params)
    affordable = [o for o in offers if budget is None or float(o.unit_price_usd) <= budget]
    if not affordable:
        return Choice(None, reason="over_budget")
    pool = affordable
    if scenario == "flight":
        cabin = params.get("cabin_class", "economy")
        pool = [o for o in pool if o.unit == cabin]
        for pref, key in (("targetFlightNumber", "flight_number"), ("targetAirline", "airline")):
            wanted = params.get(pref)
            narrowed = [o for o in pool if wanted and (names.same(str(o.attributes.get(key, "")), wanted)
                                                       or _matches(wanted, str(o.attributes.get("airline_name", ""))))]
            pool = narrowed or pool
    elif scenario in ("hotel", "activity"):
        wanted = params.get("room_preference" if scenario == "hotel" else "seat_type")
        pool = [o for o in pool if _matches(wanted, o.unit, o.unit_name)] or pool
    if not pool:
        return Choice(None, reason="no_offers")
    target = params.get("time") if scenario == "restaurant" else params.get("targetDepartureTime")
    if target is None:
        return Choice(min(pool, key=lambda o: (float(o.unit_price_usd), o.start)))
    exact = [o for o in pool if _hhmm(o.start) == target]
    if exact:
        return Choice(min(exact, key=lambda o: float(o.unit_price_usd)))
    if not consent.get("allowTimeAdjustment", True):
        return Choice(None, reason="no_time_in_window")
    window = consent.get("maxTimeAdjustmentMinutes", 90)
    wanted_minutes = int(target[:2]) * 60 + int(target[3:])
    near = [o for o in pool if abs(_minutes(o.start) - wanted_minutes) <= window]
    if not near:
        return Choice(None, reason="no_time_in_window")
    best = min(near, key=lambda o: (abs(_minutes(o.start) - wanted_minutes), _minutes(o.start), float(o.unit_price_usd)))
    return Choice(best, from_time=target, to_time=_hhmm(best.start))
