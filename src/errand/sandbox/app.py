"""The sandbox marketplace's HTTP API: what provider adapters call, as they would a real site.

It is a separate origin in spirit: mounted at ``/sandbox`` by the composition root, with
its own error body ``{"error": "<code>", "message": "…", "nearest": ["HH:MM", …]}`` and
nothing shared with Errand's dialects. Routes live under ``/api/{provider_id}/``; a
provider id the sandbox does not run is a 404. Every request is one unit of work.

Like a payment platform's test mode, it can misbehave on purpose: ``ERRAND_SANDBOX_FAULTS``
(JSON, e.g. ``{"sandbox-tables": {"latency_ms": 200, "error_rate": 0.1}}``) delays every
request to a provider and fails a share of them with 503 ``injected_fault``, so retries,
timeouts and fallback can be tested and benchmarked against it.
"""

import asyncio
import json
import os
import random
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from errand.kit import clock
from errand.kit.db import Database
from errand.kit.errors import DomainError, InvalidRequest, Unavailable
from errand.models.sandbox_booking import SandboxBooking
from errand.sandbox import service

_STATUS_BY_KIND = {"invalid": 400, "not_found": 404, "conflict": 409, "unavailable": 503}
FAULTS_ENV = "ERRAND_SANDBOX_FAULTS"

SlotStart = Annotated[
    str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$", description="Venue-local start, YYYY-MM-DDTHH:MM")
]
PartySize = Annotated[int, Field(ge=1, le=1000)]


class GuestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)


class ReservationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: SlotStart
    party_size: PartySize
    guest: GuestIn


class HoldIn(ReservationIn):
    ttl_seconds: int = Field(default=service.DEFAULT_HOLD_TTL_SECONDS, ge=1, le=86_400)


class ReservationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: SlotStart | None = None
    party_size: PartySize | None = None
    guest: GuestIn | None = None


def _local(start: str) -> datetime:
    try:
        return datetime.strptime(start, "%Y-%m-%dT%H:%M")
    except ValueError:
        raise InvalidRequest(f"start {start!r} is not a valid date and time.", code="invalid") from None


def _request(venue_id: str, body: ReservationIn) -> service.TableRequest:
    return service.TableRequest(
        venue_id=venue_id, start=_local(body.start), party_size=body.party_size,
        guest=body.guest.model_dump(exclude_none=True),
    )


def _booking(booking: SandboxBooking) -> dict[str, Any]:
    return {
        "id": booking.id,
        "venue_id": booking.venue_id,
        "start": booking.slot,
        "party_size": booking.quantity,
        "status": service.public_status(booking),
        "hold_expires_at": clock.iso(booking.hold_expires_at),
        "confirmation": booking.confirmation,
    }


def _error(
    status: int, code: str, message: str, nearest: list[str] | None = None, retry_after: int | None = None
) -> JSONResponse:
    headers = {"Retry-After": str(retry_after or 1)} if status == 503 else None
    return JSONResponse({"error": code, "message": message, "nearest": nearest or []}, status, headers=headers)


@dataclass(frozen=True)
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0


@cache
def _parse_faults(raw: str) -> dict[str, Faults]:
    try:
        return {provider_id: Faults(**config) for provider_id, config in json.loads(raw).items()}
    except (ValueError, TypeError, AttributeError) as exc:
        example = '{"sandbox-tables": {"latency_ms": 0, "error_rate": 0.0}}'
        raise ValueError(f"{FAULTS_ENV} must look like {example}") from exc


def _faults_for(provider_id: str) -> Faults:
    """Read at every request, so a test can change the environment without a restart."""
    return _parse_faults(os.environ.get(FAULTS_ENV, "{}")).get(provider_id, Faults())


async def _provider(provider_id: str) -> str:
    """Resolve the provider from the path and apply its configured faults, before any work."""
    service.require_restaurant_provider(provider_id)
    faults = _faults_for(provider_id)
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.error_rate > 0 and random.random() < faults.error_rate:  # noqa: S311 - not security
        raise Unavailable("injected_fault", f"{provider_id} failed on purpose ({FAULTS_ENV}).", retry_after=1)
    return provider_id


async def _idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    if not idempotency_key or len(idempotency_key) > 128:
        raise InvalidRequest("An Idempotency-Key header of 1 to 128 characters is required.", code="invalid")
    return idempotency_key


Provider = Annotated[str, Depends(_provider)]
IdempotencyKey = Annotated[str, Depends(_idempotency_key)]


def _routes(db: Database) -> APIRouter:
    router = APIRouter(prefix="/api/{provider_id}")

    @router.get("/restaurants")
    async def list_restaurants(provider_id: Provider, name: str | None = None, city: str | None = None) -> Any:
        """Restaurants this provider sells, filtered by name and city (exact, case-insensitive)."""
        venues = service.find_restaurants(provider_id, name, city)
        return {"restaurants": [v.describe() for v in venues]}

    @router.get("/restaurants/{venue_id}/availability")
    async def get_availability(
        provider_id: Provider, venue_id: str,
        day: Annotated[date, Query(alias="date")], party_size: Annotated[int, Query(ge=1, le=1000)],
    ) -> Any:
        """Future slot starts on a date (venue-local) that can still seat the party."""
        async with db.unit_of_work() as session:
            slots = await service.availability(session, provider_id, venue_id, day, party_size)
        return {
            "venueId": venue_id, "date": day.isoformat(),
            "slots": [{"time": f"{start:%H:%M}", "remaining": left} for start, left in slots],
        }

    @router.post("/restaurants/{venue_id}/holds", status_code=201)
    async def create_hold(provider_id: Provider, venue_id: str, body: HoldIn, key: IdempotencyKey) -> Any:
        """Hold a table for `ttl_seconds` (default 900); confirm it before it expires or it is freed."""
        async with db.unit_of_work() as session:
            booking = await service.hold(
                session, provider_id, _request(venue_id, body), idempotency_key=key, ttl_seconds=body.ttl_seconds
            )
            return _booking(booking)

    @router.post("/holds/{hold_id}/confirm")
    async def confirm_hold(provider_id: Provider, hold_id: str, key: IdempotencyKey) -> Any:
        """Turn a live hold into a reservation; confirming a confirmed hold returns the same reservation."""
        async with db.unit_of_work() as session:
            return _booking(await service.confirm_hold(session, provider_id, hold_id))

    @router.post("/holds/{hold_id}/release")
    async def release_hold(provider_id: Provider, hold_id: str) -> Any:
        """Give a hold's table back; releasing twice is harmless."""
        async with db.unit_of_work() as session:
            return _booking(await service.release_hold(session, provider_id, hold_id))

    @router.post("/restaurants/{venue_id}/reservations", status_code=201)
    async def create_reservation(
        provider_id: Provider, venue_id: str, body: ReservationIn, key: IdempotencyKey
    ) -> Any:
        """Book a table outright. The same Idempotency-Key and body return the first reservation."""
        async with db.unit_of_work() as session:
            booking = await service.book(session, provider_id, _request(venue_id, body), idempotency_key=key)
            return _booking(booking)

    @router.patch("/reservations/{reservation_id}")
    async def modify_reservation(
        provider_id: Provider, reservation_id: str, body: ReservationPatch, key: IdempotencyKey
    ) -> Any:
        """Change start, party size or guest; if the new start cannot seat the party, nothing changes."""
        async with db.unit_of_work() as session:
            booking = await service.modify(
                session, provider_id, reservation_id,
                start=_local(body.start) if body.start is not None else None,
                party_size=body.party_size,
                guest=body.guest.model_dump(exclude_none=True) if body.guest is not None else None,
            )
            return _booking(booking)

    @router.post("/reservations/{reservation_id}/cancel")
    async def cancel_reservation(provider_id: Provider, reservation_id: str) -> Any:
        """Cancel and free the table; cancelling a cancelled reservation returns it unchanged."""
        async with db.unit_of_work() as session:
            return _booking(await service.cancel(session, provider_id, reservation_id))

    @router.get("/reservations/{reservation_id}")
    async def get_reservation(provider_id: Provider, reservation_id: str) -> Any:
        """A reservation or hold as the restaurant sees it."""
        async with db.unit_of_work() as session:
            return _booking(await service.get_booking(session, provider_id, reservation_id))

    return router


def build_sandbox_app(db: Database) -> FastAPI:
    """The sandbox marketplace as an ASGI app over ``db``; the caller mounts it at ``/sandbox``."""
    app = FastAPI(
        title="Errand sandbox marketplace",
        description="Test-mode restaurants that behave like real booking systems: capacity, holds, "
        "idempotency keys and injectable faults. Times are local to the venue.",
    )
    app.include_router(_routes(db))

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        nearest = exc.details.get("nearest") if isinstance(exc.details, dict) else None
        return _error(_STATUS_BY_KIND.get(exc.kind, 500), exc.code, exc.message, nearest, exc.retry_after)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(part) for part in err['loc'][1:]) or err['loc'][0]}: {err['msg']}"
            for err in exc.errors()
        ]
        return _error(400, "invalid", "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid")
        return _error(exc.status_code, code, str(exc.detail))

    return app
