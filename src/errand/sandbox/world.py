"""The sandbox marketplace's inventory, read once from the packaged ``world.json``.

The file is the single source of what the sandbox sells. Its ``about`` field fixes the
meaning of the numbers, and this module is where that meaning becomes code:

- weekdays are 0=Monday..6=Sunday, as :meth:`datetime.date.weekday` counts them;
- times are local to the venue, so every ``datetime`` here is naive venue-local time;
- a restaurant reservation seats its whole party at one slot start, and
  ``covers_per_slot`` is how many covers each slot start can take;
- a hotel sells ``rooms`` of each room type per night;
- a flight sells ``seats`` per cabin per departure date, on the weekdays of ``days``
  (``"daily"`` or a list); a cabin with 0 seats is not sold;
- an event sells ``tickets`` per seat type per performance date, on its ``weekdays``.

Each kind of inventory gets its own frozen dataclass and a field on :class:`World`;
the raw JSON never leaves this module. A file whose entries contradict each other (a
flight from an airport its city does not have, an unknown airline) fails at first use.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from importlib.resources import files
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from errand.kit import clock, names

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EVERY_DAY = frozenset(range(7))
CABIN_NAMES = {
    "economy": "Economy", "premium_economy": "Premium Economy", "business": "Business", "first": "First",
}


def local_now(timezone: str) -> datetime:
    """The wall-clock time now at a venue, naive like every venue-local time here."""
    return clock.now().astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


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
class City:
    name: str
    country: str
    timezone: str
    airports: tuple[str, ...]
    neighborhoods: tuple[str, ...]


@dataclass(frozen=True)
class Airline:
    code: str
    name: str


@dataclass(frozen=True)
class RoomType:
    code: str
    name: str
    max_adults: int
    nightly_rate_usd: int
    rooms: int


@dataclass(frozen=True)
class Hotel:
    """A hotel: ``rooms`` of each room type per night, check-in and check-out venue-local."""

    id: str
    name: str
    city: str
    neighborhood: str
    star_rating: int
    timezone: str
    check_in: time
    check_out: time
    room_types: tuple[RoomType, ...]

    def room_type(self, code: str) -> RoomType | None:
        return next((r for r in self.room_types if r.code == code), None)


@dataclass(frozen=True)
class Cabin:
    code: str
    seats: int
    fare_usd: int

    @property
    def name(self) -> str:
        return CABIN_NAMES[self.code]

    @property
    def sold(self) -> bool:
        return self.seats > 0


@dataclass(frozen=True)
class Flight:
    """A scheduled flight; it departs at ``departs_local`` (origin time) on each of ``weekdays``."""

    number: str
    airline: Airline
    origin: str
    dest: str
    origin_city: str
    dest_city: str
    origin_timezone: str
    dest_timezone: str
    departs_local: time
    duration_minutes: int
    cabins: tuple[Cabin, ...]
    weekdays: frozenset[int]

    @property
    def route(self) -> str:
        """The city pair, ``"<origin city>-<dest city>"``: how a traveller (and the provider catalog) names a route."""
        return f"{self.origin_city}-{self.dest_city}"

    def operates_on(self, day: date) -> bool:
        return day.weekday() in self.weekdays

    def departure(self, day: date) -> datetime:
        return datetime.combine(day, self.departs_local)

    def arrival(self, day: date) -> datetime:
        """Arrival in the destination's local time: the duration is flown in absolute time."""
        departs = self.departure(day).replace(tzinfo=ZoneInfo(self.origin_timezone))
        arrives = departs + timedelta(minutes=self.duration_minutes)
        return arrives.astimezone(ZoneInfo(self.dest_timezone)).replace(tzinfo=None)

    def cabin(self, code: str) -> Cabin | None:
        return next((c for c in self.cabins if c.code == code and c.sold), None)


@dataclass(frozen=True)
class SeatType:
    code: str
    name: str
    price_usd: int
    tickets: int


@dataclass(frozen=True)
class Event:
    """A show, game or tour that starts at ``starts_local`` on each of ``weekdays``."""

    id: str
    name: str
    city: str
    venue: str
    category: str
    timezone: str
    starts_local: time
    weekdays: frozenset[int]
    seat_types: tuple[SeatType, ...]

    def plays_on(self, day: date) -> bool:
        return day.weekday() in self.weekdays

    def start(self, day: date) -> datetime:
        return datetime.combine(day, self.starts_local)

    def seat_type(self, code: str) -> SeatType | None:
        return next((s for s in self.seat_types if s.code == code), None)


class _Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def city(self) -> str: ...


N = TypeVar("N", bound=_Named)


def _matching(venues: Iterable[N], name: str | None, city: str | None) -> list[N]:
    """Venues whose name and city match as people type them (:func:`errand.kit.names.normalise`:
    case, accents, apostrophe styles and spacing ignored); an omitted filter matches all."""
    return [
        v for v in venues
        if (name is None or names.same(v.name, name)) and (city is None or names.same(v.city, city))
    ]


def suggest(venues: Iterable[N], name: str, city: str | None) -> list[str]:
    """The names nearest to ``name`` (:func:`errand.kit.names.nearest`) among ``venues`` in ``city``;
    when none is in that city (the city may be what is misspelt), among all, as "Name (City)"."""
    venues = list(venues)
    in_city = [v for v in venues if city is None or names.same(v.city, city)]
    if in_city:
        return names.nearest(name, [v.name for v in in_city])
    city_of = {v.name: v.city for v in venues}
    return [f"{n} ({city_of[n]})" for n in names.nearest(name, list(city_of), keep_equal=True)]


@dataclass(frozen=True)
class World:
    """Everything the sandbox sells, keyed by id (cities by name, flights by number)."""

    version: int
    cities: dict[str, City]
    airlines: dict[str, Airline]
    restaurants: dict[str, Restaurant]
    hotels: dict[str, Hotel]
    flights: dict[str, Flight]
    events: dict[str, Event]

    def find_restaurants(self, name: str | None = None, city: str | None = None) -> list[Restaurant]:
        return _matching(self.restaurants.values(), name, city)

    def find_hotels(self, name: str | None = None, city: str | None = None) -> list[Hotel]:
        return _matching(self.hotels.values(), name, city)

    def find_events(self, name: str | None = None, city: str | None = None) -> list[Event]:
        return _matching(self.events.values(), name, city)

    def airports(self, place: str) -> frozenset[str]:
        """The airports a traveller means by ``place``: an airport code, or every airport of a city."""
        code = place.strip().upper()
        if any(code in c.airports for c in self.cities.values()):
            return frozenset({code})
        city = next((c for c in self.cities.values() if names.same(c.name, place)), None)
        return frozenset(city.airports) if city else frozenset()

    def flights_between(self, origin: str, dest: str) -> list[Flight]:
        """Every scheduled flight from ``origin`` to ``dest`` (codes or city names), by departure time."""
        origins, dests = self.airports(origin), self.airports(dest)
        found = [f for f in self.flights.values() if f.origin in origins and f.dest in dests]
        return sorted(found, key=lambda f: (f.departs_local, f.number))


def _weekdays(raw: Any, where: str) -> frozenset[int]:
    days = EVERY_DAY if raw == "daily" else frozenset(raw)
    if not days or not days <= EVERY_DAY:
        raise ValueError(f"world.json: {where} has weekdays outside 0..6")
    return days


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


def _hotel(raw: dict[str, Any]) -> Hotel:
    return Hotel(
        id=raw["id"], name=raw["name"], city=raw["city"], neighborhood=raw["neighborhood"],
        star_rating=raw["star_rating"], timezone=raw["timezone"],
        check_in=time.fromisoformat(raw["check_in"]), check_out=time.fromisoformat(raw["check_out"]),
        room_types=tuple(
            RoomType(code=r["code"], name=r["name"], max_adults=r["max_adults"],
                     nightly_rate_usd=r["nightly_rate_usd"], rooms=r["rooms"])
            for r in raw["room_types"]
        ),
    )


def _flight(raw: dict[str, Any], cities: dict[str, City], airlines: dict[str, Airline]) -> Flight:
    number = raw["flight_number"]
    origin_city, dest_city = cities.get(raw["origin_city"]), cities.get(raw["dest_city"])
    if origin_city is None or raw["origin"] not in origin_city.airports:
        raise ValueError(f"world.json: {number} departs from {raw['origin']}, not an airport of {raw['origin_city']}")
    if dest_city is None or raw["dest"] not in dest_city.airports:
        raise ValueError(f"world.json: {number} lands at {raw['dest']}, not an airport of {raw['dest_city']}")
    unknown_cabins = set(raw["cabins"]) - set(CABIN_NAMES)
    if raw["airline"] not in airlines or unknown_cabins:
        raise ValueError(f"world.json: {number} names an unknown airline or cabin")
    return Flight(
        number=number, airline=airlines[raw["airline"]], origin=raw["origin"], dest=raw["dest"],
        origin_city=origin_city.name, dest_city=dest_city.name,
        origin_timezone=origin_city.timezone, dest_timezone=dest_city.timezone,
        departs_local=time.fromisoformat(raw["departs_local"]), duration_minutes=raw["duration_minutes"],
        cabins=tuple(Cabin(code=code, seats=c["seats"], fare_usd=c["fare_usd"]) for code, c in raw["cabins"].items()),
        weekdays=_weekdays(raw["days"], number),
    )


def _event(raw: dict[str, Any]) -> Event:
    return Event(
        id=raw["id"], name=raw["name"], city=raw["city"], venue=raw["venue"], category=raw["category"],
        timezone=raw["timezone"], starts_local=time.fromisoformat(raw["starts_local"]),
        weekdays=_weekdays(raw["weekdays"], raw["id"]),
        seat_types=tuple(
            SeatType(code=s["code"], name=s["name"], price_usd=s["price_usd"], tickets=s["tickets"])
            for s in raw["seat_types"]
        ),
    )


@cache
def load_world() -> World:
    """Parse the packaged inventory once per process; a malformed file fails at first use."""
    raw = json.loads(files("errand.sandbox").joinpath("world.json").read_text(encoding="utf-8"))
    cities = {
        c["name"]: City(name=c["name"], country=c["country"], timezone=c["timezone"],
                        airports=tuple(c["airports"]), neighborhoods=tuple(c["neighborhoods"]))
        for c in raw["cities"]
    }
    airlines = {a["code"]: Airline(code=a["code"], name=a["name"]) for a in raw["airlines"]}
    restaurants = [_restaurant(r) for r in raw["restaurants"]]
    hotels = [_hotel(h) for h in raw["hotels"]]
    flights = [_flight(f, cities, airlines) for f in raw["flights"]]
    events = [_event(e) for e in raw["events"]]
    for venue in (*restaurants, *hotels, *events):
        if venue.city not in cities:
            raise ValueError(f"world.json: {venue.id} is in {venue.city}, which is not a city of the world")
    world = World(
        version=raw["version"], cities=cities, airlines=airlines,
        restaurants={r.id: r for r in restaurants}, hotels={h.id: h for h in hotels},
        flights={f.number: f for f in flights}, events={e.id: e for e in events},
    )
    counts = (len(restaurants), len(hotels), len(flights), len(events))
    if counts != (len(world.restaurants), len(world.hotels), len(world.flights), len(world.events)):
        raise ValueError("world.json: two entries share an id or flight number")
    return world
