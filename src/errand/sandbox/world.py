"""The sandbox marketplace's inventory, read once from the packaged ``world.json``.

The file is the single source of what the sandbox sells. Its ``about`` field fixes the
meaning of the numbers, and this module is where that meaning becomes code:

- weekdays are 0=Monday..6=Sunday, as :meth:`datetime.date.weekday` counts them;
- times are local to the venue, so every ``datetime`` here is naive venue-local time;
- a restaurant reservation seats its whole party at one slot start, and
  ``covers_per_slot`` is how many covers each slot start can take.

Each kind of inventory gets its own frozen dataclass and a field on :class:`World`;
the raw JSON never leaves this module.
"""

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib.resources import files
from typing import Any

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Restaurant:
    """A restaurant and the slot starts it seats parties at."""

    id: str
    name: str
    city: str
    neighborhood: str
    cuisine: str
    timezone: str
    price_per_person_usd: int
    opens: time
    closes: time
    closed_weekdays: frozenset[int]
    slot_minutes: int
    covers_per_slot: int
    max_party_size: int

    def is_open_on(self, day: date) -> bool:
        return day.weekday() not in self.closed_weekdays

    def slot_starts(self, day: date) -> list[datetime]:
        """Bookable starts on ``day``: from opening, every ``slot_minutes``, while before closing."""
        if not self.is_open_on(day):
            return []
        start, close = datetime.combine(day, self.opens), datetime.combine(day, self.closes)
        step = timedelta(minutes=self.slot_minutes)
        starts = []
        while start < close:
            starts.append(start)
            start += step
        return starts

    def is_slot_start(self, at: datetime) -> bool:
        return at in self.slot_starts(at.date())

    def describe(self) -> dict[str, Any]:
        """The public listing, in the JSON shape the world file uses."""
        return {
            "id": self.id,
            "name": self.name,
            "city": self.city,
            "neighborhood": self.neighborhood,
            "cuisine": self.cuisine,
            "timezone": self.timezone,
            "price_per_person_usd": self.price_per_person_usd,
            "max_party_size": self.max_party_size,
            "slot_minutes": self.slot_minutes,
            "hours": {"open": self.opens.strftime("%H:%M"), "close": self.closes.strftime("%H:%M")},
            "closed_weekdays": sorted(self.closed_weekdays),
        }


@dataclass(frozen=True)
class World:
    """Everything the sandbox sells, keyed by id."""

    version: int
    restaurants: dict[str, Restaurant]

    def find_restaurants(self, name: str | None = None, city: str | None = None) -> list[Restaurant]:
        """Restaurants whose name and city match exactly, ignoring case; an omitted filter matches all."""
        return [
            r for r in self.restaurants.values()
            if (name is None or r.name.casefold() == name.casefold())
            and (city is None or r.city.casefold() == city.casefold())
        ]


def _restaurant(raw: dict[str, Any]) -> Restaurant:
    restaurant = Restaurant(
        id=raw["id"],
        name=raw["name"],
        city=raw["city"],
        neighborhood=raw["neighborhood"],
        cuisine=raw["cuisine"],
        timezone=raw["timezone"],
        price_per_person_usd=raw["price_per_person_usd"],
        opens=time.fromisoformat(raw["hours"]["open"]),
        closes=time.fromisoformat(raw["hours"]["close"]),
        closed_weekdays=frozenset(raw["closed_weekdays"]),
        slot_minutes=raw["slot_minutes"],
        covers_per_slot=raw["covers_per_slot"],
        max_party_size=raw["max_party_size"],
    )
    # Slots are generated within one calendar day; a venue closing after midnight would need more.
    if restaurant.closes <= restaurant.opens or restaurant.slot_minutes <= 0:
        raise ValueError(f"world.json: {restaurant.id} has unusable hours or slot length")
    return restaurant


@cache
def load_world() -> World:
    """Parse the packaged inventory once per process; a malformed file fails at first use."""
    raw = json.loads(files("errand.sandbox").joinpath("world.json").read_text(encoding="utf-8"))
    restaurants = [_restaurant(r) for r in raw["restaurants"]]
    return World(version=raw["version"], restaurants={r.id: r for r in restaurants})
