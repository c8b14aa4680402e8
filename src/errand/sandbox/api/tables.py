"""The partner reservations API of ``sandbox-tables``: what Errand's reservations dialect calls.

Restaurants only, under ``/api/{provider_id}/``: list and find restaurants, availability,
holds (confirm, release), reservations (book, modify, cancel). It never meets the
obstacles of the job API; injected latency and errors do apply.
"""

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from errand.kit import clock, limits
from errand.kit.db import Database
from errand.models.sandbox_booking import SandboxBooking
from errand.sandbox import catalog, inventory, restaurants
from errand.sandbox.common import IdempotencyKey, LocalStart
from errand.sandbox.faults import FaultInjector
from errand.sandbox.world import load_world, suggest

# The sandbox seats at most what Errand asks for in one booking (errand.kit.limits); a venue may seat fewer.
PartySize = Annotated[int, Field(ge=1, le=limits.PARTY_SIZE_MAX)]


class GuestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)


class ReservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: LocalStart
    party_size: PartySize
    guest: GuestIn


class HoldIn(ReservationIn):
    ttl_seconds: int = Field(default=inventory.DEFAULT_HOLD_TTL_SECONDS, ge=1, le=86_400)


class ReservationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: LocalStart | None = None
    party_size: PartySize | None = None
    guest: GuestIn | None = None


def _request(venue_id: str, body: ReservationIn) -> restaurants.TableRequest:
    return restaurants.TableRequest(
        venue_id=venue_id, start=body.start, party_size=body.party_size,
        guest=body.guest.model_dump(exclude_none=True),
    )


def _booking(booking: SandboxBooking) -> dict[str, Any]:
    return {
        "id": booking.id,
        "venue_id": booking.venue_id,
        "start": booking.slot,
        "party_size": booking.quantity,
        "status": inventory.public_status(booking),
        "hold_expires_at": clock.iso(booking.hold_expires_at),
        "confirmation": booking.confirmation,
    }


def routes(db: Database, faults: FaultInjector, authenticated: Callable[..., Awaitable[None]]) -> APIRouter:
    """The reservations API; every route first runs ``authenticated`` (the caller's credential for the provider)."""
    router = APIRouter(prefix="/api/{provider_id}", tags=["reservations API (sandbox-tables)"],
                       dependencies=[Depends(authenticated)])

    async def provider(provider_id: str) -> str:
        """Resolve the provider from the path and apply its configured faults, before any work."""
        catalog.require_reservations(provider_id)
        await faults.apply(provider_id, job_api=False)
        return provider_id

    Provider = Annotated[str, Depends(provider)]
    _catalog_routes(router, db, Provider)
    _hold_routes(router, db, Provider)
    _reservation_routes(router, db, Provider)
    return router


def _catalog_routes(router: APIRouter, db: Database, Provider: Any) -> None:
    """What the restaurant sells: its restaurants, and their free slot starts on a date."""

    @router.get("/restaurants")
    async def list_restaurants(provider_id: Provider, name: str | None = None, city: str | None = None) -> Any:
        """Restaurants this provider sells, filtered by name and city.

        Names match ignoring case, accents and apostrophe styles ("L’Arpege" finds L'Arpège).
        When a name matches none, `suggestions` lists the nearest names (in the city, when given).
        """
        world = load_world()
        found = world.find_restaurants(name, city)
        if found or not name:
            return {"restaurants": [v.describe() for v in found]}
        return {"restaurants": [], "suggestions": suggest(world.restaurants.values(), name, city)}

    @router.get("/restaurants/{venue_id}/availability")
    async def get_availability(
        provider_id: Provider, venue_id: str,
        day: Annotated[date, Query(alias="date")], party_size: Annotated[int, Query(ge=1, le=limits.PARTY_SIZE_MAX)],
    ) -> Any:
        """Future slot starts on a date (venue-local) that can still seat the party."""
        venue = restaurants.get_restaurant(venue_id)
        async with db.unit_of_work(read_only=True) as session:
            slots = await restaurants.availability(session, venue, day, party_size)
        return {
            "venueId": venue_id, "date": day.isoformat(),
            "slots": [{"time": f"{start:%H:%M}", "remaining": left} for start, left in slots],
        }


def _hold_routes(router: APIRouter, db: Database, Provider: Any) -> None:
    """Holds: a table kept for a while, then confirmed into a reservation or released."""

    @router.post("/restaurants/{venue_id}/holds", status_code=201)
    async def create_hold(provider_id: Provider, venue_id: str, body: HoldIn, key: IdempotencyKey) -> Any:
        """Hold a table for `ttl_seconds` (default 900); confirm it before it expires or it is freed."""
        async with db.unit_of_work() as session:
            booking = await restaurants.hold(
                session, provider_id, _request(venue_id, body), idempotency_key=key, ttl_seconds=body.ttl_seconds
            )
            return _booking(booking)

    @router.post("/holds/{hold_id}/confirm")
    async def confirm_hold(provider_id: Provider, hold_id: str, key: IdempotencyKey) -> Any:
        """Turn a live hold into a reservation; confirming a confirmed hold returns the same reservation."""
        async with db.unit_of_work() as session:
            booking = await inventory.load(session, provider_id, hold_id, lock=True)
            return _booking(await inventory.confirm(session, booking))

    @router.post("/holds/{hold_id}/release")
    async def release_hold(provider_id: Provider, hold_id: str) -> Any:
        """Give a hold's table back; releasing twice is harmless."""
        async with db.unit_of_work() as session:
            booking = await inventory.load(session, provider_id, hold_id, lock=True)
            return _booking(await inventory.release(session, booking))


def _reservation_routes(router: APIRouter, db: Database, Provider: Any) -> None:
    """Reservations: booked outright, changed, cancelled and read."""

    @router.post("/restaurants/{venue_id}/reservations", status_code=201)
    async def create_reservation(
        provider_id: Provider, venue_id: str, body: ReservationIn, key: IdempotencyKey
    ) -> Any:
        """Book a table outright. The same Idempotency-Key and body return the first reservation."""
        async with db.unit_of_work() as session:
            booking = await restaurants.book(session, provider_id, _request(venue_id, body), idempotency_key=key)
            return _booking(booking)

    @router.patch("/reservations/{reservation_id}")
    async def modify_reservation(
        provider_id: Provider, reservation_id: str, body: ReservationPatch, key: IdempotencyKey
    ) -> Any:
        """Change start, party size or guest; if the new start cannot seat the party, nothing changes."""
        async with db.unit_of_work() as session:
            booking = await restaurants.modify(
                session, provider_id, reservation_id, start=body.start, party_size=body.party_size,
                guest=body.guest.model_dump(exclude_none=True) if body.guest is not None else None,
            )
            return _booking(booking)

    @router.post("/reservations/{reservation_id}/cancel")
    async def cancel_reservation(provider_id: Provider, reservation_id: str) -> Any:
        """Cancel and free the table; cancelling a cancelled reservation returns it unchanged."""
        async with db.unit_of_work() as session:
            booking = await inventory.load(session, provider_id, reservation_id, lock=True)
            return _booking(await inventory.cancel(session, booking))

    @router.get("/reservations/{reservation_id}")
    async def get_reservation(provider_id: Provider, reservation_id: str) -> Any:
        """A reservation or hold as the restaurant sees it."""
        async with db.unit_of_work(read_only=True) as session:
            return _booking(await inventory.load(session, provider_id, reservation_id, lock=False))
