"""The job API every sandbox provider serves: search, venue, alternatives, checkouts, holds.

This is what Errand's job executor reaches through the provider adapters, for every
scenario. Obstacles are answered with the statuses a real site's API would use:
404 ``unknown_venue`` (no venue by that name; ``suggestions`` lists the nearest),
404 ``venue_not_served``, 401 ``login_required``, 403 ``captcha_required``, 503
``provider_flaky`` / ``injected_fault`` (with Retry-After), 409 ``no_availability``.
The web-only providers (``kind: browser``) have no job API: 404 ``not_found``.
"""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from errand.kit import clock, limits
from errand.kit.crypto import canonical_json
from errand.kit.db import Database
from errand.models.sandbox_booking import SandboxBooking
from errand.sandbox import catalog, inventory, service
from errand.sandbox.errors import Flaky, Invalid
from errand.sandbox.common import Clock, Day, IdempotencyKey, LocalStart, absolute_url
from errand.sandbox.faults import FaultInjector
from errand.sandbox.offers import Pick, Query

Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# At most the largest quantity one booking may take in any scenario (errand.kit.limits).
Quantity = Annotated[int, Field(ge=1, le=limits.ANY_QUANTITY_MAX)]
TravelerValue = Annotated[str, StringConstraints(max_length=500)] | int | float | bool | None


class SearchIn(BaseModel):
    """A search, as Errand's ``SearchQuery``; fields this sandbox does not know are ignored."""

    model_config = ConfigDict(extra="ignore")

    scenario: Annotated[str, StringConstraints(pattern="^(restaurant|hotel|flight|activity)$")]
    city: Text | None = None
    venue: Text | None = None
    origin: Text | None = None
    dest: Text | None = None
    date: Day
    time: Clock | None = None
    end_date: Day | None = None
    quantity: Quantity
    preferences: dict[Annotated[str, StringConstraints(max_length=64)], Any] = Field(default={}, max_length=40)

    def query(self) -> Query:
        return Query(
            scenario=self.scenario, day=self.date, quantity=self.quantity, city=self.city, venue=self.venue,
            origin=self.origin, dest=self.dest, at=self.time, end_day=self.end_date, preferences=self.preferences,
        )


class PickIn(BaseModel):
    """The offer to check out, with the fields the search returned for it."""

    model_config = ConfigDict(extra="forbid")

    venue_id: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    unit: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    start: LocalStart | Day = Field(description="Venue-local YYYY-MM-DDTHH:MM (or the date alone)")
    end: Day | None = Field(default=None, description="A hotel stay's checkout date")
    quantity: Quantity

    def pick(self) -> Pick:
        start = self.start
        day, at = (start.date(), start.time()) if isinstance(start, datetime) else (start, None)
        return Pick(venue_id=self.venue_id, unit=self.unit, day=day, at=at, end_day=self.end, quantity=self.quantity)


class CheckoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer: PickIn
    traveler: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], TravelerValue] = Field(
        max_length=40, description="Who travels: name or first_name/last_name, email, phone; flights add "
        "dob, passport_number, passport_country."
    )
    ttl_seconds: int = Field(default=inventory.DEFAULT_HOLD_TTL_SECONDS, ge=1, le=86_400)


async def _admit(db: Database, provider: catalog.Provider, keys: tuple[str, ...], call_key: str) -> None:
    """Fail the first calls to a flaky venue; the count is committed before the failure."""
    if not provider.is_flaky(keys):
        return
    async with db.unit_of_work() as session:
        failing = await provider.fails_flakily(session, keys, call_key)
    if failing:
        raise Flaky(f"{provider.display_name} did not answer in time; retry.")


def _hold(request: Request, booking: SandboxBooking) -> dict[str, Any]:
    token = booking.handoff_token
    handoff_url = absolute_url(request, "checkout_page", token=token) if token else None
    return {**service.hold_view(booking), "handoff_url": handoff_url}


def routes(db: Database, faults: FaultInjector, authenticated: Callable[..., Awaitable[None]]) -> APIRouter:
    """The job API; every route first runs ``authenticated`` (the caller's credential for the provider)."""
    router = APIRouter(prefix="/api/{provider_id}", tags=["job API"], dependencies=[Depends(authenticated)])

    async def provider(provider_id: str) -> catalog.Provider:
        """Resolve the provider from the path and apply its configured faults, before any work."""
        found = catalog.require_api(provider_id)
        await faults.apply(provider_id, job_api=True)
        return found

    Provider = Annotated[catalog.Provider, Depends(provider)]
    _offer_routes(router, db, Provider)
    _hold_routes(router, db, Provider)
    return router


def _offer_routes(router: APIRouter, db: Database, Provider: Any) -> None:
    """What a provider offers: a search, the named venue's facts, alternatives at similar venues."""

    @router.post("/search")
    async def search(provider: Provider, body: SearchIn) -> Any:
        """Every offer of the named venue (or route) on the date that fits `quantity`.

        Restaurants: each slot start; hotels: each room type that sleeps `quantity` adults
        and is free every night of [date, end_date); flights: each cabin of each flight on
        origin→dest (airport codes or city names) with that many seats; events: each seat type.
        """
        query = body.query()
        found = service.target(provider, query)
        await _admit(db, provider, found.keys, canonical_json({"search": body.model_dump(mode="json")}))
        async with db.unit_of_work(read_only=True) as session:
            return {"offers": await service.search(session, provider, query, found)}

    @router.post("/venue")
    async def venue(provider: Provider, body: SearchIn) -> Any:
        """The venue the search names, as this provider sells it: its kind and typical price.

        404 `unknown_venue` (with `suggestions`, the nearest names) when no venue has that
        name in that city; 404 `venue_not_served` when this provider does not sell it.
        """
        return {"venue": service.describe(provider, body.query())}

    @router.post("/alternatives")
    async def alternatives(provider: Provider, body: SearchIn) -> Any:
        """Offers at similar venues of the same city this provider sells, for a venue switch.

        Restaurants at the same date and time (same cuisine and neighborhood first), hotels
        for the same dates, events on the same date; flights have none (search lists the route).
        """
        async with db.unit_of_work(read_only=True) as session:
            return {"offers": await service.alternatives(session, provider, body.query())}


def _hold_routes(router: APIRouter, db: Database, Provider: Any) -> None:
    """Checkouts: a hold that stops at payment (or a booking), read back later, and the provider's ledger."""

    @router.post("/checkouts", status_code=201)
    async def create_checkout(request: Request, provider: Provider, body: CheckoutIn, key: IdempotencyKey) -> Any:
        """Hold an offer and stop at payment (`held`, `handoff_url`), or book it where there is no card gate.

        The same Idempotency-Key and body return the same hold; another body is 409.
        """
        pick = body.offer.pick()
        scenario, venue, keys = service.locate(provider, pick)
        await _admit(db, provider, keys, canonical_json({"checkout": key}))
        async with db.unit_of_work() as session:
            booking = await service.checkout(
                session, provider, scenario, venue, pick,
                traveler=body.traveler, ttl_seconds=body.ttl_seconds, idempotency_key=key,
            )
            return _hold(request, booking)

    @router.get("/holds/{hold_id}")
    async def get_hold(request: Request, provider: Provider, hold_id: str) -> Any:
        """A hold or booking with its current status (`held`, `booked`, `expired`, …)."""
        async with db.unit_of_work(read_only=True) as session:
            return _hold(request, await service.get_hold(session, provider, hold_id))

    @router.get("/ledger")
    async def ledger(provider_id: str, since: str | None = None) -> Any:
        """How many holds and bookings this provider created since `since` (ISO 8601; all if absent), by status.

        Read-only and never faulted: the provider's side of the books, for benchmarks and
        tests that check a job never booked twice. A hold past its expiry counts as `expired`.
        """
        catalog.require(provider_id)
        try:
            after = clock.as_utc(datetime.fromisoformat(since)) if since else None
        except ValueError:
            raise Invalid("since: must be an ISO 8601 date-time.") from None
        async with db.unit_of_work(read_only=True) as session:
            counts = await service.ledger(session, provider_id, after)
        return {"provider_id": provider_id, "since": clock.iso(after), "counts": counts, "total": sum(counts.values())}
