"""Provider adapters for the sandbox marketplace, reached over HTTP like any real provider.

The sandbox is mounted in Errand's own server by default, but the core never imports it:
these adapters speak its JSON API at ``settings.effective_sandbox_url``, so the same
code path (timeouts, 5xx, idempotency keys) is exercised as with a remote provider. Each
adapter presents its provider's credential (``Authorization: Bearer
settings.sandbox_api_token(id)``), which the sandbox requires of every API call.

:class:`SandboxApiProvider` holds what every sandbox adapter shares: the registry's pooled
``aiohttp.ClientSession`` (:mod:`errand.providers.http`; redirects are not followed), the job API
(:class:`~errand.providers.base.JobProvider`: search, alternatives, describe, checkout) and
the mapping of the sandbox's answers onto the core's errors:

- 404 ``unknown_venue``     → :class:`VenueUnknown` with the sandbox's ``suggestions``;
- 404 ``venue_not_served``  → :class:`VenueNotServed`; other 404 → :class:`ProviderNotFound`;
- 401 ``login_required``    → :class:`NeedsLogin`;
- 403 ``captcha_required``  → :class:`CaptchaRequired`;
- 409 ``no_availability``   → :class:`NoAvailability` with the sandbox's nearest times;
- timeout, connection error, 429, 5xx, unreadable 2xx → :class:`ProviderUnavailable`
  with the Retry-After seconds (the outcome is unknown: retry with the same idempotency
  key, or move down the chain);
- other 409                 → :class:`ProviderConflict` ``provider_conflict``;
- other 4xx                 → :class:`ProviderRejected` ``provider_rejected`` (kind invalid).

Both carry the sandbox's own error code in ``details["provider_error"]``.

``SandboxTables`` answers ``find_venue`` from its restaurant catalog, fetched once and cached
(:mod:`errand.providers.catalog`), so a reservation costs one call: the book or hold.

One subclass per sandbox provider id; the sandbox's catalog decides what each sells and
which venues meet which obstacle (card gate: sandbox-tables, -stays, -air, -fares and
-tickets stop at payment; sandbox-dine and -rooms complete). ``priority`` is the order a
fallback chain should try them in, lowest first, when nothing better is known.
"""

import json as jsonlib
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import TypeAdapter, ValidationError

from errand.kit import metrics, timing
from errand.kit.config import Settings
from errand.kit.errors import DomainError
from errand.providers import http
from errand.providers.base import (
    Checkout, Guest, Hold, Offer, Reservation, SearchQuery, Venue, VenueFacts, VenueListing, VenueQuery,
)
from errand.providers.errors import (
    CaptchaRequired, NeedsLogin, NoAvailability, ProviderConflict, ProviderNotFound, ProviderRejected,
    ProviderUnavailable, VenueNotServed, VenueUnknown,
)
from errand.providers.catalog import VenueCatalog


def _local(start: datetime) -> str:
    """Venue-local wall-clock time as the sandbox expects it; any tzinfo is ignored on purpose."""
    return start.replace(tzinfo=None).isoformat(timespec="minutes")


def _seg(value: str) -> str:
    return quote(value, safe="")


def _query(params: dict[str, Any]) -> dict[str, str | int | float]:
    """``params`` as aiohttp takes them: None dropped, booleans as ``true``/``false`` (as httpx sent them)."""
    return {key: ("true" if value else "false") if isinstance(value, bool) else value
            for key, value in params.items() if value is not None}


# A traveler as JSON: dates, decimals and the like become strings and numbers.
_TRAVELER = TypeAdapter(dict[str, Any])


class SandboxApiProvider:
    """Base for adapters to one sandbox provider's JSON API; subclasses set the class attributes."""

    # Plain annotations rather than ClassVar, so subclasses satisfy the provider Protocol.
    id: str
    display_name: str
    scenarios: tuple[str, ...]
    priority: int = 10
    kind: str = "api"
    sandbox: bool = True
    stops_at_payment: bool = True  # a card gate: every checkout stops at the payment page

    def __init__(self, settings: Settings) -> None:
        self._base_url = f"{settings.effective_sandbox_url.rstrip('/')}/api/{_seg(self.id)}"
        self._timeout = settings.provider_timeout_seconds
        self._settings = settings
        self._shared: http.SharedClient | None = None
        self._auth: dict[str, str] | None = None

    def _http(self) -> tuple[aiohttp.ClientSession, dict[str, str]]:
        """The pooled session and this provider's credential header."""
        # Taken on first use, inside the event loop that will use it; deriving the token
        # may read (or create) the data dir's key, so it waits until then too.
        if self._shared is None:
            self._shared = http.acquire(self._settings)
        if self._auth is None:
            self._auth = {"Authorization": f"Bearer {self._settings.sandbox_api_token(self.id)}"}
        return self._shared.client(), self._auth

    async def aclose(self) -> None:
        shared, self._shared = self._shared, None
        if shared is not None:
            await http.release(self._settings, shared)

    @metrics.provider_call
    async def _call(
        self, method: str, path: str, *, json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None, idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        session, auth = self._http()
        headers = {**auth, "Idempotency-Key": idempotency_key} if idempotency_key else auth
        try:
            with timing.phase(timing.PROVIDER):
                async with session.request(
                    method, self._base_url + path, json=json, params=_query(params) if params else None,
                    headers=headers, allow_redirects=False,
                ) as response:
                    content = await response.read()
        except TimeoutError as exc:  # the session's total timeout, connecting or reading
            raise ProviderUnavailable(self.id, f"no answer within {self._timeout:g} s") from exc
        except aiohttp.ClientError as exc:
            # Named, with the setting that moves it: a process started apart from `errand serve`
            # (`errand mcp`, `errand worker`) looks for the sandbox at this server's default port.
            raise ProviderUnavailable(self.id, f"could not reach the sandbox at {self._base_url} "
                                               f"({type(exc).__name__}); set ERRAND_SANDBOX_URL to the "
                                               "sandbox of a running `errand serve` or `errand sandbox`") from exc
        if not 200 <= response.status < 300:
            raise self._error(response, content)
        try:
            body = jsonlib.loads(content)
        except ValueError as exc:
            raise ProviderUnavailable(self.id, "answered with something other than JSON") from exc
        if not isinstance(body, dict):
            raise ProviderUnavailable(self.id, "answered with an unexpected JSON shape")
        return body

    def _error(self, response: aiohttp.ClientResponse, content: bytes) -> DomainError:
        """The core's error for a non-2xx ``response`` whose body is ``content``."""
        try:
            body = jsonlib.loads(content)
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        code = str(body.get("error") or f"http_{response.status}")
        message = str(body.get("message") or response.reason or "")
        status = response.status
        if status >= 500 or status == 429:
            retry_after = response.headers.get("Retry-After", "")
            wait = int(retry_after) if retry_after.isdigit() else None
            return ProviderUnavailable(self.id, message, retry_after=wait)
        if status == 404 and code == "unknown_venue":
            return VenueUnknown(self.id, message, [str(n) for n in body.get("suggestions") or []])
        if status == 404 and code == "venue_not_served":
            return VenueNotServed(self.id, message)
        if status == 404:
            return ProviderNotFound(message)
        if status == 401 and code == "login_required":
            return NeedsLogin(self.id, message)
        if status == 403 and code == "captcha_required":
            return CaptchaRequired(self.id, message)
        if status == 409 and code == "no_availability":
            return NoAvailability(message, [str(t) for t in body.get("nearest") or []])
        details = {"provider": self.id, "provider_error": code}
        if status == 409:
            return ProviderConflict(message, details=details)
        return ProviderRejected(message, details=details)

    # --- the job API: every scenario ---------------------------------------------------

    async def search(self, query: SearchQuery) -> list[Offer]:
        return self._offers(await self._call("POST", "/search", json=query.model_dump(mode="json")))

    async def alternatives(self, query: SearchQuery) -> list[Offer]:
        return self._offers(await self._call("POST", "/alternatives", json=query.model_dump(mode="json")))

    async def describe(self, query: SearchQuery) -> VenueFacts:
        """The venue ``query`` names, as this provider sells it; VenueUnknown / VenueNotServed otherwise."""
        body = await self._call("POST", "/venue", json=query.model_dump(mode="json"))
        try:
            return VenueFacts.model_validate({**body["venue"], "provider_id": self.id})
        except (KeyError, TypeError, ValidationError) as exc:
            raise ProviderUnavailable(self.id, "answered a venue lookup with an unexpected JSON shape") from exc

    async def checkout(self, offer: Offer, traveler: dict[str, Any], *, idempotency_key: str) -> Checkout:
        """Hold ``offer``: ``paused_payment`` with the payment page's URL behind a card gate, else ``completed``.

        A replay after the hold lapsed (the key's hold is expired or released) is NoAvailability.
        """
        picked = {"venue_id": offer.venue_id, "unit": offer.unit, "start": offer.start, "end": offer.end,
                  "quantity": offer.quantity}
        body = await self._call(
            "POST", "/checkouts", json={"offer": picked, "traveler": _TRAVELER.dump_python(traveler, mode="json")},
            idempotency_key=idempotency_key,
        )
        try:
            status, hold_id = body["status"], str(body["hold_id"])
            expires_at = datetime.fromisoformat(body["expires_at"]) if body.get("expires_at") else None
        except (KeyError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(self.id, "answered a checkout with an unexpected JSON shape") from exc
        if status not in ("held", "booked"):
            raise NoAvailability(f"{self.id}: the hold made under this idempotency key is {status}.")
        if body.get("handoff_url"):
            return Checkout(status="paused_payment", hold_id=hold_id, handoff_url=body["handoff_url"],
                            confirmation=body.get("confirmation"), expires_at=expires_at)
        return Checkout(status="completed", hold_id=hold_id, confirmation=body.get("confirmation"))

    # --- venue search (VenueDirectory) ----------------------------------------------------

    async def search_venues(self, query: VenueQuery) -> list[VenueListing]:
        """Every venue of ``query.scenario`` (in ``query.city``, if given) this provider sells."""
        if query.scenario not in self.scenarios or query.scenario == "flight":
            return []
        params = {"scenario": query.scenario, **({"city": query.city} if query.city else {})}
        body = await self._call("GET", "/venues", params=params)
        try:
            return [VenueListing.model_validate({**raw, "provider_id": self.id}) for raw in body["venues"]]
        except (KeyError, TypeError, ValidationError) as exc:
            raise ProviderUnavailable(self.id, "answered a venue listing with an unexpected JSON shape") from exc

    def _offers(self, body: dict[str, Any]) -> list[Offer]:
        try:
            return [Offer.model_validate(raw) for raw in body["offers"]]
        except (KeyError, TypeError, ValidationError) as exc:
            raise ProviderUnavailable(self.id, "answered a search with an unexpected JSON shape") from exc


class SandboxVenueFeed(SandboxApiProvider):
    """The venues feed alone, of a sandbox provider reached otherwise (the web-only sites' adapters use it)."""

    def __init__(self, settings: Settings, provider_id: str, scenarios: tuple[str, ...]) -> None:
        self.id, self.display_name, self.scenarios = provider_id, provider_id, scenarios
        super().__init__(settings)


class SandboxTables(SandboxApiProvider):
    """Restaurants, card-gated; also the partner reservations API the reservations dialect books through."""

    id = "sandbox-tables"
    display_name = "Sandbox Tables"
    scenarios = ("restaurant",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._catalog = VenueCatalog(self.id, self._restaurants)

    async def find_venue(self, name: str, city: str) -> Venue | None:
        """The restaurant, from the cached catalog (:mod:`errand.providers.catalog`): no call per booking."""
        return await self._catalog.find(name, city)

    async def _restaurants(self) -> list[Venue]:
        """Every restaurant this provider sells (``GET /restaurants`` without filters), in its order."""
        body = await self._call("GET", "/restaurants")
        try:
            return [Venue.model_validate(raw) for raw in body["restaurants"]]
        except (KeyError, TypeError, ValidationError) as exc:
            raise ProviderUnavailable(self.id, "answered the restaurant listing with an unexpected JSON shape") from exc

    async def book(
        self, venue_id: str, start: datetime, party_size: int, guest: Guest, *, idempotency_key: str
    ) -> Reservation:
        body = await self._call(
            "POST", f"/restaurants/{_seg(venue_id)}/reservations",
            json=self._party(start, party_size, guest), idempotency_key=idempotency_key,
        )
        return self._reservation(body)

    async def hold(
        self, venue_id: str, start: datetime, party_size: int, guest: Guest, *,
        ttl_seconds: int, idempotency_key: str,
    ) -> Hold:
        body = await self._call(
            "POST", f"/restaurants/{_seg(venue_id)}/holds",
            json={**self._party(start, party_size, guest), "ttl_seconds": ttl_seconds},
            idempotency_key=idempotency_key,
        )
        return Hold(hold_id=body["id"], expires_at=datetime.fromisoformat(body["hold_expires_at"]))

    async def confirm_hold(self, hold_id: str, *, idempotency_key: str) -> Reservation:
        body = await self._call("POST", f"/holds/{_seg(hold_id)}/confirm", idempotency_key=idempotency_key)
        return self._reservation(body)

    async def release_hold(self, hold_id: str) -> None:
        await self._call("POST", f"/holds/{_seg(hold_id)}/release")

    async def modify(
        self, reservation_id: str, *, start: datetime, party_size: int, guest: Guest, idempotency_key: str
    ) -> Reservation:
        body = await self._call(
            "PATCH", f"/reservations/{_seg(reservation_id)}",
            json=self._party(start, party_size, guest), idempotency_key=idempotency_key,
        )
        return self._reservation(body)

    async def cancel(self, reservation_id: str, *, idempotency_key: str) -> None:
        await self._call("POST", f"/reservations/{_seg(reservation_id)}/cancel", idempotency_key=idempotency_key)

    @staticmethod
    def _party(start: datetime, party_size: int, guest: Guest) -> dict[str, Any]:
        return {"start": _local(start), "party_size": party_size, "guest": guest.model_dump(exclude_none=True)}

    @staticmethod
    def _reservation(body: dict[str, Any]) -> Reservation:
        return Reservation(
            reservation_id=body["id"], confirmation=body["confirmation"], status=body["status"],
            start=body["start"], party_size=body["party_size"],
        )


class SandboxDine(SandboxApiProvider):
    """Restaurants without a card gate (a booking completes), not the most expensive ones."""

    id = "sandbox-dine"
    display_name = "Sandbox Dine"
    scenarios = ("restaurant",)
    priority = 20
    stops_at_payment = False


class SandboxStays(SandboxApiProvider):
    """Hotels, card-gated."""

    id = "sandbox-stays"
    display_name = "Sandbox Stays"
    scenarios = ("hotel",)


class SandboxRooms(SandboxApiProvider):
    """Hotels without a card gate (pay at the hotel): a booking completes."""

    id = "sandbox-rooms"
    display_name = "Sandbox Rooms"
    scenarios = ("hotel",)
    priority = 20
    stops_at_payment = False


class SandboxAir(SandboxApiProvider):
    """Flights, card-gated."""

    id = "sandbox-air"
    display_name = "Sandbox Air"
    scenarios = ("flight",)


class SandboxFares(SandboxApiProvider):
    """Flights, card-gated; serves the routes Sandbox Air does not."""

    id = "sandbox-fares"
    display_name = "Sandbox Fares"
    scenarios = ("flight",)
    priority = 20


class SandboxTickets(SandboxApiProvider):
    """Event tickets, card-gated."""

    id = "sandbox-tickets"
    display_name = "Sandbox Tickets"
    scenarios = ("activity",)
