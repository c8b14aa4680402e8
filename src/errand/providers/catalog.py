"""A provider's restaurant catalog, fetched once and kept a few minutes: venue lookups without a call each.

A booking names its restaurant by name and city; the provider's catalog (what it sells:
id, name, city, timezone, price per person, largest party, slot length) changes rarely,
so an adapter fetches the whole listing once and answers ``find_venue`` from memory. A
booking then costs one call to the provider: the book or hold itself.

Freshness. The catalog is kept in a ``cachetools.TTLCache`` for :data:`TTL_SECONDS`; the
first lookup after that fetches it again (one fetch at a time: concurrent lookups wait for
it). When that refresh fails with :class:`ProviderUnavailable` while an earlier copy
exists, the earlier copy keeps being served, for at most :data:`STALE_FOR_SECONDS` past its
expiry, and the fetch is retried at most every :data:`RETRY_SECONDS` (so an unreachable
provider does not add a timeout to every booking); past that bound the error is raised. A
venue the catalog still lists after the provider dropped it fails at the booking call
instead (the provider's 404), which is what it did before this cache existed.

Matching is the provider's: names and cities compare as :func:`errand.kit.names.normalise`
does, the first listed venue wins, and a miss raises :class:`VenueUnknown` with the nearest
names exactly as the sandbox's ``GET /restaurants`` suggests them. The catalog holds no
personal data.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from cachetools import TTLCache

from errand.kit import names
from errand.providers.base import Venue
from errand.providers.errors import ProviderUnavailable, VenueUnknown

TTL_SECONDS = 300.0
STALE_FOR_SECONDS = 900.0
RETRY_SECONDS = 10.0


class _Index:
    """One fetched catalog: the venues in the provider's order, and the first of each (name, city)."""

    def __init__(self, venues: Sequence[Venue]) -> None:
        self.venues = list(venues)
        self.by_name: dict[tuple[str, str], Venue] = {}
        for venue in self.venues:
            self.by_name.setdefault((names.normalise(venue.name), names.normalise(venue.city)), venue)


def suggest(venues: Sequence[Venue], name: str, city: str) -> list[str]:
    """The names nearest to ``name`` among the venues in ``city``; when none is in that city (the
    city may be what is misspelt), among all, as "Name (City)". An empty name has none."""
    if not name:
        return []
    in_city = [v.name for v in venues if names.same(v.city, city)]
    if in_city:
        return names.nearest(name, in_city)
    city_of: dict[str, str] = {}
    for venue in venues:
        city_of[venue.name] = venue.city
    return [f"{n} ({city_of[n]})" for n in names.nearest(name, list(city_of), keep_equal=True)]


class VenueCatalog:
    """The restaurants of one provider, from ``fetch`` (every venue it sells, in its own order).

    ``fetch`` raises :class:`ProviderUnavailable` when the provider cannot be reached (or
    answers nonsense); any other error it raises is passed on as is. ``timer`` (seconds,
    monotonic) is there for tests.
    """

    def __init__(
        self, provider_id: str, fetch: Callable[[], Awaitable[Sequence[Venue]]], *,
        ttl_seconds: float = TTL_SECONDS, stale_for_seconds: float = STALE_FOR_SECONDS,
        retry_seconds: float = RETRY_SECONDS, timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider_id = provider_id
        self._fetch = fetch
        self._fresh: TTLCache[str, _Index] = TTLCache(maxsize=1, ttl=ttl_seconds, timer=timer)
        self._serve_until = ttl_seconds + stale_for_seconds
        self._retry_seconds = retry_seconds
        self._timer = timer
        self._last: tuple[float, _Index] | None = None  # (fetched at, catalog): the stale copy
        self._retry_at = 0.0
        self._lock = asyncio.Lock()

    async def find(self, name: str, city: str) -> Venue:
        """The first venue named ``name`` in ``city``; VenueUnknown with suggestions, or ProviderUnavailable."""
        index = await self._index()
        venue = index.by_name.get((names.normalise(name), names.normalise(city)))
        if venue is None:
            raise VenueUnknown(self._provider_id, f"no restaurant named {name!r} in {city}",
                               suggestions=suggest(index.venues, name, city))
        return venue.model_copy()

    def _stale(self) -> _Index | None:
        if self._last is not None and self._timer() - self._last[0] < self._serve_until:
            return self._last[1]
        return None

    async def _index(self) -> _Index:
        index = self._fresh.get("catalog")
        if index is not None:
            return index
        async with self._lock:
            index = self._fresh.get("catalog")  # fetched while this lookup waited
            if index is not None:
                return index
            stale = self._stale()
            if stale is not None and self._timer() < self._retry_at:
                return stale
            try:
                venues = await self._fetch()
            except ProviderUnavailable:
                stale = self._stale()  # the fetch may have taken a timeout's worth
                if stale is None:
                    raise
                self._retry_at = self._timer() + self._retry_seconds
                return stale
            index = _Index(venues)
            self._fresh["catalog"] = index
            self._last = (self._timer(), index)
            return index
