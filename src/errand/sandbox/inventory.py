"""Inventory and bookings, the same for every scenario: what a real booking system keeps.

A scenario (restaurants, hotels, flights, events) decides *what* a booking takes; this
module takes it, keeps it and gives it back.

Capacity. One ``sandbox_slots`` row per (venue, unit, slot) holds ``capacity`` units: a
restaurant's covers at a slot start, a hotel's rooms of one type on one night, a cabin's
seats on a departure date, a seat type's tickets on a performance date. Units are taken
with one statement per slot, ``INSERT … (taken = n) ON CONFLICT DO UPDATE SET taken =
taken + n WHERE taken + n <= capacity``: a row is created on demand with the units already
taken, and no row back means the slot is full (given-back units are shifted with the
conditional ``UPDATE`` alone). That statement is atomic on SQLite and PostgreSQL alike, so
no interleaving of requests can oversell a slot. A booking that takes several slots (a
stay of several nights) takes them in one transaction: if one is full, :class:`SlotFull`
is raised and the caller's rollback gives back the ones already taken, all or nothing.

Holds count against capacity until they are confirmed, released or expire; an expired
hold is given back lazily, by the next booking at its venue and unit, and in bulk by
:func:`release_expired_holds`. Searches count lapsed-but-unswept holds as free. Each lapsed
hold that waited at a checkout page is claimed once for telling its partner
(:func:`claim_expiry_reports`), however it was expired.

Lock order. Every transaction touches ``sandbox_bookings`` rows before ``sandbox_slots``
rows, and slot rows in sorted order, so concurrent requests queue instead of deadlocking.

Idempotency. A booking is created under an idempotency key that is unique per provider,
with one ``INSERT … ON CONFLICT DO NOTHING``. The same key with the same request returns
the first booking (also when two arrive together: the loser's insert waits on the winner's
row, inserts nothing, and it re-reads the winner's row); the same key with another request
is ``idempotency_conflict``.

Statements. A booking at a venue with no lapsed hold is three: the booking's insert, the
venue's expiry update (indexed on venue, status and expiry) and the slot's upsert.
"""

import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from errand.kit import clock
from errand.kit.crypto import canonical_json, sha256_hex
from errand.kit.errors import Conflict, DomainError, IdempotencyConflict, InvalidState, NotFound
from errand.kit.ids import new_id
from errand.models.sandbox_booking import SandboxBooking, SandboxSlot
from errand.sandbox.errors import KeyInFlight

DEFAULT_HOLD_TTL_SECONDS = 900
_SYNC_OFF = {"synchronize_session": False}


class SlotFull(Exception):
    """Internal: ``slot`` cannot take the units asked for; the scenario says so in its own words."""

    def __init__(self, slot: str) -> None:
        super().__init__(slot)
        self.slot = slot


@dataclass(frozen=True)
class Claim:
    """What one booking takes and what the customer sees of it.

    ``slots`` maps each slot of ``(venue_id, unit)`` to the units taken there; a slot row
    created on demand holds ``capacity`` units. ``start``/``end`` and ``quantity`` are what
    was booked (covers, adults, passengers or tickets), ``price_usd`` what it costs.
    """

    scenario: str
    venue_id: str
    unit: str
    capacity: int
    slots: dict[str, int]
    start: str
    quantity: int
    price_usd: int
    end: str | None = None


# --- creating bookings ------------------------------------------------------------------


async def place(
    session: AsyncSession, provider_id: str, *, idempotency_key: str, request: dict[str, Any],
    status: str, guest: dict[str, Any], ttl_seconds: int | None, handoff: bool,
    claim: Callable[[], Awaitable[Claim]], sold_out: Callable[[Claim, str], Awaitable[DomainError]],
) -> SandboxBooking:
    """Book (``status`` ``booked``) or hold (``held``, for ``ttl_seconds``) what ``claim`` computes.

    A replayed key returns the first booking, even once ``claim`` refuses the request (the
    slot has passed), so a replay always succeeds. ``handoff`` gives the hold a token for
    the checkout page. When a slot is full, ``sold_out`` builds the error to raise.
    """
    request_hash = sha256_hex(canonical_json(request))
    try:
        wanted = await claim()
    except DomainError:
        # A replay is answered even when the request could no longer be booked (its slot passed).
        existing = await _by_key(session, provider_id, idempotency_key)
        if existing is not None:
            return _replay(existing, request_hash)
        raise
    now = clock.now()
    booking = SandboxBooking(
        id=new_id("sbk"), provider_id=provider_id, idempotency_key=idempotency_key,
        request_hash=request_hash, scenario=wanted.scenario, venue_id=wanted.venue_id, unit=wanted.unit,
        slot=wanted.start, slot_end=wanted.end, quantity=wanted.quantity, slots=wanted.slots,
        price_usd=wanted.price_usd, status=status, guest=guest,
        hold_expires_at=now + timedelta(seconds=ttl_seconds) if ttl_seconds else None,
        expiry_reported_at=None, confirmation=_confirmation() if status == "booked" else None,
        handoff_token=secrets.token_urlsafe(24) if handoff else None, created_at=now, updated_at=now,
    )
    # Claim the key first, in one statement: a concurrent twin waits on our row, then inserts
    # nothing and replays ours (or, if we rolled back, inserts its own).
    values = {column.key: getattr(booking, column.key) for column in _BOOKINGS.columns}
    if (await session.execute(_statements(session).insert_booking, values)).first() is None:
        existing = await _by_key(session, provider_id, idempotency_key)
        if existing is None:  # the twin rolled back between our insert and this read
            raise KeyInFlight("A concurrent request with this key did not finish; retry.")
        return _replay(existing, request_hash)
    # The row is written: the session keeps the object as loaded, so later changes flush as UPDATEs.
    make_transient_to_detached(booking)
    session.add(booking)
    try:
        await take(session, wanted.venue_id, wanted.unit, wanted.capacity, wanted.slots)
    except SlotFull as full:
        raise await sold_out(wanted, full.slot) from None
    return booking


def _dialect(session: AsyncSession) -> Any:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


_BOOKINGS: Any = SandboxBooking.__table__
_SLOTS: Any = SandboxSlot.__table__


@dataclass(frozen=True)
class _HotPath:
    """The statements every booking runs, built once per dialect (executed with their parameters).

    SQLAlchemy caches the SQL it compiles, not the statement objects: building an upsert
    costs more Python than running it, so the booking path builds none.
    """

    insert_booking: Any  # every column; returns the id, or nothing when the key exists
    expire_at_venue: Any  # b_venue, b_unit, b_now: flips the venue's lapsed holds, returns what they took
    take_one: Any  # venue_id, unit, slot, capacity, taken: see _take_one


@cache
def _hot_path(dialect_name: str) -> _HotPath:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    insert_slot = dialect.insert(_SLOTS)
    return _HotPath(
        insert_booking=dialect.insert(_BOOKINGS).on_conflict_do_nothing(
            index_elements=["provider_id", "idempotency_key"]).returning(_BOOKINGS.c.id),
        expire_at_venue=update(_BOOKINGS).where(
            _BOOKINGS.c.status == "held", _BOOKINGS.c.hold_expires_at < bindparam("b_now"),
            _BOOKINGS.c.venue_id == bindparam("b_venue"), _BOOKINGS.c.unit == bindparam("b_unit"),
        ).values(status="expired").returning(_BOOKINGS.c.venue_id, _BOOKINGS.c.unit, _BOOKINGS.c.slots),
        take_one=insert_slot.on_conflict_do_update(
            index_elements=["venue_id", "unit", "slot"],
            set_={"taken": _SLOTS.c.taken + insert_slot.excluded.taken},
            where=_SLOTS.c.taken + insert_slot.excluded.taken <= _SLOTS.c.capacity,
        ).returning(_SLOTS.c.id),
    )


def _statements(session: AsyncSession) -> _HotPath:
    return _hot_path(session.get_bind().dialect.name)


async def _by_key(session: AsyncSession, provider_id: str, key: str) -> SandboxBooking | None:
    stmt = select(SandboxBooking).where(
        SandboxBooking.provider_id == provider_id, SandboxBooking.idempotency_key == key
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def _replay(existing: SandboxBooking, request_hash: str) -> SandboxBooking:
    if existing.request_hash != request_hash:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request; use a new key.",
        )
    return existing


def _confirmation() -> str:
    return f"SBX-{secrets.token_hex(4).upper()}"


# --- changing what exists ---------------------------------------------------------------


def public_status(booking: SandboxBooking) -> str:
    """The status a caller sees: a hold past its expiry is ``expired`` even before it is swept."""
    if booking.status == "held" and booking.hold_expires_at is not None and booking.hold_expires_at <= clock.now():
        return "expired"
    return booking.status


async def load(session: AsyncSession, provider_id: str, booking_id: str, *, lock: bool) -> SandboxBooking:
    stmt = select(SandboxBooking).where(SandboxBooking.id == booking_id, SandboxBooking.provider_id == provider_id)
    booking = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    if booking is None:
        raise NotFound(f"There is no reservation or hold {booking_id!r}.")
    return booking


async def load_by_handoff(session: AsyncSession, token: str, *, lock: bool) -> SandboxBooking:
    stmt = select(SandboxBooking).where(SandboxBooking.handoff_token == token)
    booking = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    if booking is None:
        raise NotFound("There is no checkout at this address.")
    return booking


async def confirm(session: AsyncSession, booking: SandboxBooking) -> SandboxBooking:
    """Turn a live hold into a booking; a booking that is already confirmed is returned as is."""
    if booking.status == "booked":
        return booking
    if public_status(booking) != "held":
        raise InvalidState(f"Hold {booking.id} is {public_status(booking)} and cannot be confirmed.")
    booking.status, booking.confirmation, booking.hold_expires_at = "booked", _confirmation(), None
    await session.flush()
    return booking


async def release(session: AsyncSession, booking: SandboxBooking) -> SandboxBooking:
    """Give a hold's units back; a hold that holds nothing any more is returned unchanged."""
    if booking.status == "booked":
        raise InvalidState(f"{booking.id} is a confirmed reservation: cancel it instead.")
    if booking.status == "held":
        await _give_back(session, booking)
        booking.status, booking.hold_expires_at = "released", None
        await session.flush()
    return booking


async def cancel(session: AsyncSession, booking: SandboxBooking) -> SandboxBooking:
    """Cancel a booking or a hold and give its units back; cancelling twice is harmless."""
    if booking.status in ("held", "booked"):
        await _give_back(session, booking)
        booking.status, booking.hold_expires_at = "cancelled", None
        await session.flush()
    return booking


async def _give_back(session: AsyncSession, booking: SandboxBooking) -> None:
    for slot in sorted(booking.slots):
        await shift(session, booking.venue_id, booking.unit, slot, -booking.slots[slot])


# --- expiry -----------------------------------------------------------------------------


async def release_expired_holds(session: AsyncSession) -> int:
    """Give back the units of every hold past its expiry; returns how many holds expired.

    Safe to run from several processes at once: each hold flips from ``held`` to
    ``expired`` in one conditional UPDATE, and only the run that flipped it gives its
    units back.
    """
    rows = await _expire(session)
    freed: dict[tuple[str, str, str], int] = {}
    for venue_id, unit, slots in rows:
        for slot, units in slots.items():
            freed[(venue_id, unit, slot)] = freed.get((venue_id, unit, slot), 0) + units
    for (venue_id, unit, slot), units in sorted(freed.items()):
        await shift(session, venue_id, unit, slot, -units)
    return len(rows)


@dataclass(frozen=True)
class Lapsed:
    """A hold that expired unpaid at a checkout page, to be reported to the partner once."""

    hold_id: str
    provider_id: str
    idempotency_key: str
    expired_at: datetime | None


async def claim_expiry_reports(session: AsyncSession, limit: int = 500) -> list[Lapsed]:
    """Expired holds with a checkout page whose expiry was not reported yet, now marked reported.

    Holds expired lazily (by a booking at their venue) are found as well as swept ones. Safe
    to run from several processes at once: each hold is claimed by one conditional UPDATE.
    """
    pending = select(SandboxBooking.id).where(
        SandboxBooking.status == "expired", SandboxBooking.expiry_reported_at.is_(None),
        SandboxBooking.handoff_token.is_not(None),
    ).limit(limit)
    ids = list((await session.execute(pending)).scalars())
    if not ids:
        return []
    stmt = (
        update(SandboxBooking)
        .where(SandboxBooking.id.in_(ids), SandboxBooking.expiry_reported_at.is_(None))
        .values(expiry_reported_at=clock.now())
        .returning(SandboxBooking.id, SandboxBooking.provider_id, SandboxBooking.idempotency_key,
                   SandboxBooking.hold_expires_at)
    )
    rows = (await session.execute(stmt, execution_options=_SYNC_OFF)).all()
    return [Lapsed(*row) for row in rows]


async def _expire(session: AsyncSession, *where: Any) -> list[tuple[str, str, dict[str, int]]]:
    """Flip lapsed holds (optionally filtered) to ``expired``; returns what each still takes."""
    stmt = (
        update(SandboxBooking)
        .where(SandboxBooking.status == "held", SandboxBooking.hold_expires_at < clock.now(), *where)
        .values(status="expired")
        .returning(SandboxBooking.venue_id, SandboxBooking.unit, SandboxBooking.slots)
    )
    rows = (await session.execute(stmt, execution_options=_SYNC_OFF)).all()
    return [(venue_id, unit, slots) for venue_id, unit, slots in rows]


# --- capacity ---------------------------------------------------------------------------


async def take(
    session: AsyncSession, venue_id: str, unit: str, capacity: int, wanted: dict[str, int],
    *, replacing: SandboxBooking | None = None,
) -> None:
    """Take ``wanted`` units (giving back what ``replacing`` takes) or raise :class:`SlotFull`.

    Lapsed holds at this venue and unit are expired first and their units counted as free,
    so a hold that nobody swept yet never blocks a booking.
    """
    deltas = dict(wanted)
    lapsed = (await session.execute(
        _statements(session).expire_at_venue, {"b_venue": venue_id, "b_unit": unit, "b_now": clock.now()})).all()
    given_back = [slots for _, _, slots in lapsed] + ([replacing.slots] if replacing is not None else [])
    for slots in given_back:
        for slot, units in slots.items():
            deltas[slot] = deltas.get(slot, 0) - units
    if given_back or any(units > capacity for units in wanted.values()):
        # Rare: rows to give back to, or more than a new row could hold. Make the rows, then shift.
        await ensure_slots(session, venue_id, unit, capacity, wanted)
        for slot in sorted(deltas):
            if deltas[slot] and not await shift(session, venue_id, unit, slot, deltas[slot]):
                raise SlotFull(slot)
        return
    for slot in sorted(wanted):
        if wanted[slot] and not await _take_one(session, venue_id, unit, capacity, slot, wanted[slot]):
            raise SlotFull(slot)


async def _take_one(session: AsyncSession, venue_id: str, unit: str, capacity: int, slot: str, units: int) -> bool:
    """Take ``units`` (at most ``capacity``) at a slot in one statement, creating its row if it is new.

    The same as :func:`ensure_slots` then :func:`shift`: a new row starts with ``units``
    taken; an existing row takes them only if they fit. False when they do not.
    """
    params = {"venue_id": venue_id, "unit": unit, "slot": slot, "capacity": capacity, "taken": units}
    return (await session.execute(_statements(session).take_one, params)).first() is not None


async def ensure_slots(session: AsyncSession, venue_id: str, unit: str, capacity: int, slots: Iterable[str]) -> None:
    rows = [{"venue_id": venue_id, "unit": unit, "slot": s, "capacity": capacity, "taken": 0} for s in slots]
    if not rows:
        return
    stmt = _dialect(session).insert(SandboxSlot).values(rows).on_conflict_do_nothing(
        index_elements=["venue_id", "unit", "slot"])
    await session.execute(stmt)


async def shift(session: AsyncSession, venue_id: str, unit: str, slot: str, delta: int) -> bool:
    """Add ``delta`` units to a slot if the result stays within capacity; False if it would not."""
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


async def remaining(
    session: AsyncSession, venue_id: str, unit: str, capacity: int, slots: list[str]
) -> dict[str, int]:
    """Units still free at each slot, counting lapsed-but-unswept holds as free."""
    if not slots:
        return {}
    rows = await session.execute(
        select(SandboxSlot.slot, SandboxSlot.capacity - SandboxSlot.taken).where(
            SandboxSlot.venue_id == venue_id, SandboxSlot.unit == unit, SandboxSlot.slot.in_(slots)
        )
    )
    lapsed = await session.execute(
        select(SandboxBooking.slots).where(
            SandboxBooking.venue_id == venue_id, SandboxBooking.unit == unit,
            SandboxBooking.status == "held", SandboxBooking.hold_expires_at < clock.now(),
        )
    )
    free = dict.fromkeys(slots, capacity)
    free.update({slot: left for slot, left in rows.all()})
    for taken in lapsed.scalars():
        for slot, units in taken.items():
            if slot in free:
                free[slot] += units
    return free
