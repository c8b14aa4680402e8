"""The sandbox restaurant system: the rules a real restaurant's booking system would keep.

This is the other side of the wire from Errand's core, which reaches it only over HTTP
(:mod:`errand.sandbox.app`). It answers in its own words and keeps its own records in
``sandbox_bookings`` and ``sandbox_slots``.

Capacity. One ``sandbox_slots`` row per (venue, ``"table"``, slot start) is created on
demand with an insert that ignores a concurrent twin, and covers are taken with one
conditional ``UPDATE … SET taken = taken + n WHERE taken + n <= capacity``: a row count
of 0 means the slot is full. That statement is atomic on SQLite and PostgreSQL alike, so
no interleaving of requests can oversell a slot. Holds count against capacity until they
are confirmed, released or expire; an expired hold is given back lazily, by the next
request that wants its slot, and in bulk by :func:`release_expired_holds`.

Lock order. Every transaction touches ``sandbox_bookings`` rows before ``sandbox_slots``
rows, and slot rows in sorted order, so concurrent requests queue instead of deadlocking.

Idempotency. A hold or booking is created under an idempotency key that is unique per
provider. The same key with the same request returns the first result (also when two
arrive together: the loser's insert hits the unique constraint inside a savepoint and it
re-reads the winner's row); the same key with another request is ``idempotency_conflict``.
Confirm, release and cancel are idempotent by state (confirming a booked hold returns the
booking), and modify sets absolute values, so replaying it changes nothing.

Errors (``DomainError`` kinds; the app maps them to statuses):

- :class:`NoTable` (conflict, ``no_availability``): not bookable, with the nearest starts
  that would be;
- conflict ``idempotency_conflict`` / ``invalid_state``; not_found ``not_found``.
"""

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import clock
from errand.kit.crypto import canonical_json, sha256_hex
from errand.kit.errors import Conflict, NotFound, Unavailable
from errand.kit.ids import new_id
from errand.models.sandbox_booking import SandboxBooking, SandboxSlot
from errand.sandbox.world import WEEKDAY_NAMES, Restaurant, load_world

RESTAURANT_PROVIDERS = frozenset({"sandbox-tables"})
TABLE = "table"
DEFAULT_HOLD_TTL_SECONDS = 900
_SYNC_OFF = {"synchronize_session": False}


def slot_key(start: datetime) -> str:
    """A venue-local start as stored and shown: ``YYYY-MM-DDTHH:MM``."""
    return start.isoformat(timespec="minutes")


class NoTable(Conflict):
    """The request cannot be seated; ``nearest`` lists up to three starts that could."""

    def __init__(self, message: str, nearest: list[str]) -> None:
        super().__init__("no_availability", message, details={"nearest": nearest})
        self.nearest = nearest


@dataclass(frozen=True)
class TableRequest:
    """A party to seat: ``start`` is naive venue-local time, ``guest`` name/email/phone."""

    venue_id: str
    start: datetime
    party_size: int
    guest: dict[str, str]


# --- venues -----------------------------------------------------------------------------


def require_restaurant_provider(provider_id: str) -> None:
    if provider_id not in RESTAURANT_PROVIDERS:
        raise NotFound("not_found", f"There is no sandbox restaurant provider {provider_id!r}.")


def find_restaurants(provider_id: str, name: str | None, city: str | None) -> list[Restaurant]:
    require_restaurant_provider(provider_id)
    return load_world().find_restaurants(name, city)


def get_restaurant(provider_id: str, venue_id: str) -> Restaurant:
    require_restaurant_provider(provider_id)
    venue = load_world().restaurants.get(venue_id)
    if venue is None:
        raise NotFound("not_found", f"There is no restaurant {venue_id!r}.")
    return venue


async def availability(
    session: AsyncSession, provider_id: str, venue_id: str, day: date, party_size: int
) -> list[tuple[datetime, int]]:
    """Future slot starts on ``day`` that can still seat the party, with covers remaining."""
    venue = get_restaurant(provider_id, venue_id)
    if party_size > venue.max_party_size:
        return []
    local_now = _local_now(venue)
    starts = [s for s in venue.slot_starts(day) if s > local_now]
    remaining = await _remaining(session, venue, starts)
    return [(s, remaining[s]) for s in starts if remaining[s] >= party_size]


# --- creating holds and bookings --------------------------------------------------------


async def hold(
    session: AsyncSession, provider_id: str, request: TableRequest, *,
    idempotency_key: str, ttl_seconds: int = DEFAULT_HOLD_TTL_SECONDS,
) -> SandboxBooking:
    """Take the covers for ``ttl_seconds``; they come back unless the hold is confirmed."""
    return await _create(session, provider_id, request, "held", idempotency_key, ttl_seconds)


async def book(
    session: AsyncSession, provider_id: str, request: TableRequest, *, idempotency_key: str
) -> SandboxBooking:
    """Seat the party now, with a confirmation code."""
    return await _create(session, provider_id, request, "booked", idempotency_key, None)


async def _create(
    session: AsyncSession, provider_id: str, request: TableRequest, status: str,
    idempotency_key: str, ttl_seconds: int | None,
) -> SandboxBooking:
    venue = get_restaurant(provider_id, request.venue_id)
    slot = slot_key(request.start)
    request_hash = sha256_hex(canonical_json({
        "status": status, "venue_id": venue.id, "start": slot, "party_size": request.party_size,
        "guest": request.guest, "ttl_seconds": ttl_seconds,
    }))
    existing = await _by_key(session, provider_id, idempotency_key)
    if existing is not None:
        return _replay(existing, request_hash)
    await _ensure_bookable(session, venue, request.start, request.party_size)
    booking = SandboxBooking(
        id=new_id("sbk"), provider_id=provider_id, idempotency_key=idempotency_key,
        request_hash=request_hash, venue_id=venue.id, unit=TABLE, slot=slot,
        quantity=request.party_size, status=status, guest=request.guest,
        hold_expires_at=clock.now() + timedelta(seconds=ttl_seconds) if ttl_seconds else None,
        confirmation=_confirmation() if status == "booked" else None,
    )
    try:
        # Claim the key first: a concurrent twin waits here, then fails and replays ours.
        async with session.begin_nested():
            session.add(booking)
            await session.flush()
    except IntegrityError:
        existing = await _by_key(session, provider_id, idempotency_key)
        if existing is None:  # the twin rolled back between our insert and this read
            raise Unavailable("busy", "A concurrent request with this key did not finish; retry.") from None
        return _replay(existing, request_hash)
    await _reserve(session, venue, request.start, request.party_size)
    return booking


async def _by_key(session: AsyncSession, provider_id: str, key: str) -> SandboxBooking | None:
    stmt = select(SandboxBooking).where(
        SandboxBooking.provider_id == provider_id, SandboxBooking.idempotency_key == key
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def _replay(existing: SandboxBooking, request_hash: str) -> SandboxBooking:
    if existing.request_hash != request_hash:
        raise Conflict(
            "idempotency_conflict",
            "This Idempotency-Key was already used with a different request; use a new key.",
        )
    return existing


def _confirmation() -> str:
    return f"SBX-{secrets.token_hex(4).upper()}"


# --- changing what exists ---------------------------------------------------------------


async def get_booking(session: AsyncSession, provider_id: str, booking_id: str) -> SandboxBooking:
    return await _load(session, provider_id, booking_id, lock=False)


async def confirm_hold(session: AsyncSession, provider_id: str, hold_id: str) -> SandboxBooking:
    """Turn a live hold into a booking; a booking that is already confirmed is returned as is."""
    booking = await _load(session, provider_id, hold_id, lock=True)
    if booking.status == "booked":
        return booking
    if public_status(booking) != "held":
        raise Conflict("invalid_state", f"Hold {hold_id} is {public_status(booking)} and cannot be confirmed.")
    booking.status, booking.confirmation, booking.hold_expires_at = "booked", _confirmation(), None
    await session.flush()
    return booking


async def release_hold(session: AsyncSession, provider_id: str, hold_id: str) -> SandboxBooking:
    """Give a hold's covers back; a hold that holds nothing any more is returned unchanged."""
    booking = await _load(session, provider_id, hold_id, lock=True)
    if booking.status == "booked":
        raise Conflict("invalid_state", f"{hold_id} is a confirmed reservation: cancel it instead.")
    if booking.status == "held":
        await _shift(session, booking.venue_id, booking.unit, booking.slot, -booking.quantity)
        booking.status, booking.hold_expires_at = "released", None
        await session.flush()
    return booking


async def cancel(session: AsyncSession, provider_id: str, booking_id: str) -> SandboxBooking:
    """Cancel a booking or a hold and give its covers back; cancelling twice is harmless."""
    booking = await _load(session, provider_id, booking_id, lock=True)
    if booking.status in ("held", "booked"):
        await _shift(session, booking.venue_id, booking.unit, booking.slot, -booking.quantity)
        booking.status, booking.hold_expires_at = "cancelled", None
        await session.flush()
    return booking


async def modify(
    session: AsyncSession, provider_id: str, booking_id: str, *,
    start: datetime | None = None, party_size: int | None = None, guest: dict[str, str] | None = None,
) -> SandboxBooking:
    """Move a booking to another start or party size, all or nothing.

    The old covers are given back and the new ones taken in one transaction; if the new
    slot cannot seat the party, :class:`NoTable` is raised and the transaction's rollback
    leaves the booking and both slots exactly as they were.
    """
    booking = await _load(session, provider_id, booking_id, lock=True)
    if booking.status != "booked":
        raise Conflict("invalid_state", f"{booking_id} is {public_status(booking)}; only a booking can be changed.")
    venue = get_restaurant(provider_id, booking.venue_id)
    new_start = start if start is not None else datetime.fromisoformat(booking.slot)
    new_party = party_size if party_size is not None else booking.quantity
    new_slot = slot_key(new_start)
    if (new_slot, new_party) != (booking.slot, booking.quantity):
        await _ensure_bookable(session, venue, new_start, new_party)
        await _reserve(session, venue, new_start, new_party, replacing=booking)
        booking.slot, booking.quantity = new_slot, new_party
    if guest is not None:
        booking.guest = guest
    await session.flush()
    return booking


def public_status(booking: SandboxBooking) -> str:
    """The status a caller sees: a hold past its expiry is ``expired`` even before it is swept."""
    if booking.status == "held" and booking.hold_expires_at is not None and booking.hold_expires_at <= clock.now():
        return "expired"
    return booking.status


async def _load(session: AsyncSession, provider_id: str, booking_id: str, *, lock: bool) -> SandboxBooking:
    stmt = select(SandboxBooking).where(SandboxBooking.id == booking_id, SandboxBooking.provider_id == provider_id)
    booking = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    if booking is None:
        raise NotFound("not_found", f"There is no reservation or hold {booking_id!r}.")
    return booking


# --- expiry -----------------------------------------------------------------------------


async def release_expired_holds(session: AsyncSession) -> int:
    """Give back the covers of every hold past its expiry; returns how many holds expired.

    Safe to run from several processes at once: each hold flips from ``held`` to
    ``expired`` in one conditional UPDATE, and only the run that flipped it gives its
    covers back.
    """
    stmt = (
        update(SandboxBooking)
        .where(SandboxBooking.status == "held", SandboxBooking.hold_expires_at < clock.now())
        .values(status="expired")
        .returning(SandboxBooking.venue_id, SandboxBooking.unit, SandboxBooking.slot, SandboxBooking.quantity)
    )
    rows = (await session.execute(stmt, execution_options=_SYNC_OFF)).all()
    freed: dict[tuple[str, str, str], int] = {}
    for venue_id, unit, slot, quantity in rows:
        freed[(venue_id, unit, slot)] = freed.get((venue_id, unit, slot), 0) + quantity
    for (venue_id, unit, slot), quantity in sorted(freed.items()):
        await _shift(session, venue_id, unit, slot, -quantity)
    return len(rows)


async def _expire_holds_at(session: AsyncSession, venue_id: str, slot: str) -> int:
    """Expire the lapsed holds at one slot; returns the covers they held, not yet given back."""
    stmt = (
        update(SandboxBooking)
        .where(
            SandboxBooking.venue_id == venue_id, SandboxBooking.unit == TABLE, SandboxBooking.slot == slot,
            SandboxBooking.status == "held", SandboxBooking.hold_expires_at < clock.now(),
        )
        .values(status="expired")
        .returning(SandboxBooking.quantity)
    )
    return sum((await session.execute(stmt, execution_options=_SYNC_OFF)).scalars())


# --- capacity ---------------------------------------------------------------------------


async def _reserve(
    session: AsyncSession, venue: Restaurant, start: datetime, party_size: int, *,
    replacing: SandboxBooking | None = None,
) -> None:
    """Take the party's covers at ``start`` (giving back what ``replacing`` holds) or raise NoTable."""
    slot = slot_key(start)
    freed = await _expire_holds_at(session, venue.id, slot)
    await _ensure_slot(session, venue, slot)
    deltas = {slot: party_size - freed}
    if replacing is not None:
        deltas[replacing.slot] = deltas.get(replacing.slot, 0) - replacing.quantity
    for key in sorted(deltas):
        if not await _shift(session, venue.id, TABLE, key, deltas[key]):
            nearest = await _nearest(session, venue, start, party_size)
            when = f"{start:%H:%M} on {start.date().isoformat()}"
            raise NoTable(f"{venue.name} has no table for {party_size} at {when}.", nearest)


async def _ensure_slot(session: AsyncSession, venue: Restaurant, slot: str) -> None:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(SandboxSlot).values(
        venue_id=venue.id, unit=TABLE, slot=slot, capacity=venue.covers_per_slot, taken=0
    ).on_conflict_do_nothing(index_elements=["venue_id", "unit", "slot"])
    await session.execute(stmt)


async def _shift(session: AsyncSession, venue_id: str, unit: str, slot: str, delta: int) -> bool:
    """Add ``delta`` covers to a slot if the result stays within capacity; False if it would not."""
    stmt = (
        update(SandboxSlot)
        .where(
            SandboxSlot.venue_id == venue_id, SandboxSlot.unit == unit, SandboxSlot.slot == slot,
            SandboxSlot.taken + delta <= SandboxSlot.capacity,
        )
        .values(taken=SandboxSlot.taken + delta)
    )
    result: Any = await session.execute(stmt, execution_options=_SYNC_OFF)
    return bool(result.rowcount == 1)


async def _remaining(session: AsyncSession, venue: Restaurant, starts: list[datetime]) -> dict[datetime, int]:
    """Covers still free at each start, counting lapsed-but-unswept holds as free."""
    keys = [slot_key(s) for s in starts]
    if not keys:
        return {}
    slots = await session.execute(
        select(SandboxSlot.slot, SandboxSlot.capacity - SandboxSlot.taken).where(
            SandboxSlot.venue_id == venue.id, SandboxSlot.unit == TABLE, SandboxSlot.slot.in_(keys)
        )
    )
    lapsed = await session.execute(
        select(SandboxBooking.slot, func.sum(SandboxBooking.quantity))
        .where(
            SandboxBooking.venue_id == venue.id, SandboxBooking.unit == TABLE, SandboxBooking.slot.in_(keys),
            SandboxBooking.status == "held", SandboxBooking.hold_expires_at < clock.now(),
        )
        .group_by(SandboxBooking.slot)
    )
    free = {key: venue.covers_per_slot for key in keys}
    free.update({slot: left for slot, left in slots.all()})
    for slot, quantity in lapsed.all():
        free[slot] += quantity
    return {s: free[k] for s, k in zip(starts, keys, strict=True)}


# --- bookability and suggestions --------------------------------------------------------


def _local_now(venue: Restaurant) -> datetime:
    return clock.now().astimezone(ZoneInfo(venue.timezone)).replace(tzinfo=None)


async def _ensure_bookable(session: AsyncSession, venue: Restaurant, start: datetime, party_size: int) -> None:
    """Raise NoTable, with suggestions, when the venue's rules (not its capacity) refuse the request."""
    local_now = _local_now(venue)
    opens, closes = f"{venue.opens:%H:%M}", f"{venue.closes:%H:%M}"
    reason = None
    if party_size > venue.max_party_size:
        reason = (f"{venue.name} does not have enough capacity for a party of {party_size} "
                  f"(largest party: {venue.max_party_size}).")
    elif start <= local_now:
        when = start.isoformat(sep=" ", timespec="minutes")
        reason = f"{when} has already passed at {venue.name} (local time {local_now:%H:%M})."
    elif not venue.is_open_on(start.date()):
        reason = f"{venue.name} is closed on {WEEKDAY_NAMES[start.weekday()]}s."
    elif not venue.opens <= start.time() < venue.closes:
        last = venue.slot_starts(start.date())[-1]
        reason = f"No table at {start:%H:%M}: {venue.name} seats {opens}–{closes} (last seating {last:%H:%M})."
    elif not venue.is_slot_start(start):
        reason = (f"No table at {start:%H:%M}: {venue.name} seats parties every "
                  f"{venue.slot_minutes} minutes from {opens}.")
    if reason is not None:
        raise NoTable(reason, await _nearest(session, venue, start, party_size))


async def _nearest(session: AsyncSession, venue: Restaurant, start: datetime, party_size: int) -> list[str]:
    """Up to three future starts that fit the party, nearest to ``start`` first.

    They are on the requested date as ``HH:MM``; when the venue is closed that day, on its
    next open day as ``YYYY-MM-DDTHH:MM``, since a bare time would point at the closed day.
    """
    if party_size > venue.max_party_size:
        return []
    day, with_date = start.date(), False
    if not venue.is_open_on(day):
        ahead = (day + timedelta(days=n) for n in range(1, min(8, (date.max - day).days + 1)))
        open_days = [d for d in ahead if venue.is_open_on(d)]
        if not open_days:
            return []
        day, with_date = open_days[0], True
    reference = datetime.combine(day, start.time())
    local_now = _local_now(venue)
    candidates = [s for s in venue.slot_starts(day) if s > local_now and s != start]
    remaining = await _remaining(session, venue, candidates)
    fits = sorted((s for s in candidates if remaining[s] >= party_size), key=lambda s: (abs(s - reference), s))
    return [slot_key(s) if with_date else f"{s:%H:%M}" for s in fits[:3]]
