"""Book, modify and cancel restaurant reservations through a provider.

A booking spans a call to the provider that holds the inventory, so it runs as short
units of work around that call rather than one long transaction: policies are judged
first, the provider books (or holds, when an approval is required) under an idempotency
key derived from the client's, and the transaction with its audit events is written
after. Nothing is written for a request that is refused before the provider is asked,
except the audit record of a policy denial.

Every operation on a transaction is bounded by the calling key: its organization and its
mode (a test key's transactions do not exist for a live key, and the other way round) and
its scenarios (:func:`errand.identity.service.require_scenario`).

When the write after a successful provider call fails, it is tried again
(:func:`~errand.bookings.common.record_after_provider`), and a retry of the request
converges: the provider replays its result under the same downstream key. A cancel is
recorded as an intent before the provider is asked, reads ``cancelled`` from then on, and
is finished by a retry or by :func:`finish_interrupted_cancels`.

Modifying is :mod:`errand.bookings.modify`; the steps booking and modifying share are
:mod:`errand.bookings.steps`; the approval decisions are :mod:`errand.bookings.decisions`.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.bookings import decisions
from errand.bookings.common import (
    OPEN_STATUSES, SUBJECT, SYSTEM_ACTOR, amount_for, audit, audit_event, cancel_intent, get_transaction_for,
    get_transaction_row, log, provider_for, publish, record_after_provider, require_future, to_local, to_utc,
    view, view_with_approval,
)
from errand.bookings.modify import modify
from errand.bookings.schemas import AuditEventView, BookingCreate, TransactionDetail, TransactionView
from errand.bookings.steps import (
    action_for, hold_ttl, judge, policy_context, request_approval, void_pending_approval,
)
from errand.audit import service as audit_service
from errand.guard import service as guard_service
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import InvalidState, NotFound, Unavailable
from errand.kit.ids import new_id
from errand.models import Transaction
from errand.providers.base import Guest, Venue, seats_parties
from errand.providers.errors import ProviderUnavailable, VenueUnknown

__all__ = [
    "book", "cancel", "modify", "get_transaction",
    "finish_interrupted_cancels",
]

# The booking's writes, built once (Core, on the unit of work's connection).
_TXN = Transaction.__table__
_INSERT_TXN = insert(_TXN)
_SET_PENDING = update(_TXN).where(_TXN.c.id == bindparam("txn_id")).values(pending_action=bindparam("pending_action"))



async def _find_venue(core: Core, principal: Principal, name: str, city: str) -> tuple[Any, Venue]:
    """The first provider, in registry order, that knows the restaurant.

    Providers match names ignoring case, accents and apostrophe styles
    (:func:`errand.kit.names.normalise`). None knowing it is NotFound ``not_found``, whose
    message and ``details.suggestions`` carry the nearest names the providers know
    ("Did you mean Le Bernardin?"); one that could not be asked makes it Unavailable instead.
    """
    unavailable: ProviderUnavailable | None = None
    suggestions: list[str] = []
    for provider in core.providers.for_scenario("restaurant", key_env=principal.env):
        if not seats_parties(provider):
            continue  # a job-only provider cannot take a synchronous reservation
        try:
            venue = await provider.find_venue(name, city)
        except ProviderUnavailable as exc:
            unavailable = exc
            continue
        except VenueUnknown as exc:
            suggestions += [s for s in exc.suggestions if s not in suggestions]
            continue
        if venue is not None:
            return provider, venue
    if unavailable is not None:
        raise unavailable
    hint = f" Did you mean {' or '.join(suggestions)}?" if suggestions else ""
    raise NotFound(f"Restaurant '{name}' in '{city}' not found.{hint}", details={"suggestions": suggestions})


async def book(core: Core, principal: Principal, data: BookingCreate,
               idempotency_key: str | None) -> tuple[TransactionView, bool]:
    """Book a table. Raises NotFound, Conflict (capacity, idempotency), PolicyViolation (Forbidden),
    RateLimited, InvalidRequest (time in the past) and Unavailable (provider down, or the booking
    could not be recorded: retry with the same key)."""
    identity_service.require_scenario(principal, "restaurant")

    async def operation(claim: guard_service.Claim) -> dict[str, Any]:
        # Without a client key no retry can find this booking again: undo it if it cannot be recorded.
        undo = idempotency_key is None
        return (await _book(core, principal, data, claim, undo)).model_dump(mode="json")

    result = await guard_service.run_idempotent(
        core, organization_id=principal.organization_id, env=principal.env,
        scope="restaurant.book",
        key=idempotency_key, request=data.model_dump(mode="json"), operation=operation,
    )
    return TransactionView.model_validate(result.value), result.replayed


async def _book(core: Core, principal: Principal, data: BookingCreate, claim: guard_service.Claim,
                undo_unrecorded: bool) -> TransactionView:
    downstream_key = claim.downstream_key
    provider, venue = await _find_venue(core, principal, data.restaurant_name, data.city)
    local = to_local(data.starts_at, venue.timezone)
    require_future(local, venue.timezone)
    price = venue.price_per_person_usd or Decimal("0")
    amount = amount_for(price, data.party_size)
    txn_id = new_id("txn")
    starts_at = to_utc(local, venue.timezone)
    names = {"restaurant_name": venue.name, "city": venue.city}
    ctx = policy_context(principal, "book", names, local, data.party_size, price, amount, starts_at)
    decision = await judge(core, principal, ctx, ("organization", principal.organization_id))
    guest = Guest(**data.customer.model_dump())
    action = action_for("book", provider.id, venue.id, venue.name, venue.city, local, data.party_size, amount)
    hold = reservation = None
    if decision.outcome == "requires_approval":
        hold = await provider.hold(venue.id, local, data.party_size, guest,
                                   ttl_seconds=hold_ttl(core), idempotency_key=downstream_key)
    else:
        reservation = await provider.book(venue.id, local, data.party_size, guest, idempotency_key=downstream_key)

    async def write(session: Any) -> TransactionView:
        now = clock.now()
        # Written with Core (one INSERT per table); the unsaved object only feeds view().
        row = dict(
            id=txn_id, organization_id=principal.organization_id, api_key_id=principal.api_key_id,
            env=principal.env, scenario="restaurant", status="confirmed" if reservation else "requires_approval",
            provider_id=provider.id, venue_id=venue.id, venue_name=venue.name, city=venue.city,
            timezone=venue.timezone, party_size=data.party_size, starts_at=starts_at,
            price_per_person_usd=price, amount_usd=amount, customer=data.customer.model_dump(),
            reservation_id=reservation.reservation_id if reservation else None,
            confirmation=reservation.confirmation if reservation else None, created_at=now, updated_at=now,
        )
        conn = await session.connection()
        await conn.execute(_INSERT_TXN, row)
        txn = Transaction(**row)
        events = [audit_event(txn, "transaction.created", principal.actor, decision=decision.outcome,
                              reason=decision.reason, data={"action": action, "policies": decision.evaluated})]
        approval = None
        if hold is not None:
            await audit_service.record_all(session, events)
            approval = await request_approval(session, core, txn, decision, action, amount, principal.actor)
            txn.pending_action = {"kind": "book", "hold_id": hold.hold_id, "approval_id": approval.id,
                                  "action": action}
            await conn.execute(_SET_PENDING, {"txn_id": txn_id, "pending_action": txn.pending_action})
        else:
            events.append(audit_event(txn, "transaction.confirmed", principal.actor,
                                      data={"reservationId": txn.reservation_id, "providerId": provider.id}))
            await audit_service.record_all(session, events)
            await publish(session, txn, "transaction.confirmed")
        return view(txn, approval)

    try:
        return await record_after_provider(core, write, "booking", claim)
    except Unavailable as exc:
        if undo_unrecorded and exc.code == "database_unavailable":
            await _undo(provider, reservation.reservation_id if reservation else None,
                        hold.hold_id if hold else None, downstream_key)
        raise


async def _undo(provider: Any, reservation_id: str | None, hold_id: str | None, downstream_key: str) -> None:
    """Give back what the provider booked for a request Errand could not record (best effort)."""
    try:
        if hold_id:
            await provider.release_hold(hold_id)
        if reservation_id:
            await provider.cancel(reservation_id, idempotency_key=f"{downstream_key}:undo")
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
        log.warning("unrecorded_booking_not_undone", reservation_id=reservation_id, hold_id=hold_id,
                    error=type(exc).__name__)


async def cancel(core: Core, principal: Principal, transaction_id: str, reason: str | None,
                 idempotency_key: str | None) -> tuple[TransactionView, bool]:
    """Cancel a booking (also one awaiting approval). Cancelling twice is InvalidState (409).

    The cancel is recorded as accepted before the provider is asked and reads ``cancelled``
    from then on; a failure after that (provider unreachable, the final write failing) is
    Unavailable, and cancelling again, with or without the same key, finishes it."""

    async def operation(claim: guard_service.Claim) -> dict[str, Any]:
        return (await _cancel(core, principal, transaction_id, reason, claim)).model_dump(mode="json")

    result = await guard_service.run_idempotent(
        core, organization_id=principal.organization_id, env=principal.env,
        scope="restaurant.cancel", key=idempotency_key, request={"transactionId": transaction_id, "reason": reason},
        operation=operation,
    )
    return TransactionView.model_validate(result.value), result.replayed


async def _cancel(core: Core, principal: Principal, transaction_id: str, reason: str | None,
                  claim: guard_service.Claim) -> TransactionView:
    async with core.db.unit_of_work() as session:
        txn = await get_transaction_for(session, principal, transaction_id)
        if cancel_intent(txn) is None:
            if txn.status not in OPEN_STATUSES:
                raise InvalidState(f"Transaction {txn.id} is {txn.status} and cannot be cancelled.")
            if txn.status == "requires_approval":
                # Void first, so an approver deciding at the same moment cannot also win.
                await void_pending_approval(session, txn, principal.actor, "transaction cancelled")
            intent = {"kind": "cancel", "reason": reason, "actor": principal.actor, "previous_status": txn.status,
                      "hold_id": (txn.pending_action or {}).get("hold_id"), "requested_at": clock.iso(clock.now())}
            changed = await session.execute(
                update(Transaction).where(Transaction.id == txn.id, Transaction.status == txn.status)
                .values(pending_action=intent, updated_at=clock.now()))
            if changed.rowcount != 1:
                raise InvalidState(f"Transaction {txn.id} changed while it was being cancelled.")
            await session.refresh(txn)
    return await _finish_cancel(core, txn, claim)


async def _finish_cancel(core: Core, txn: Transaction, claim: guard_service.Claim | None = None) -> TransactionView:
    """Carry out an accepted cancel at the provider, then record it (with the request's
    idempotent answer when ``claim`` is given); safe to repeat.

    The provider calls are idempotent (a released hold or a cancelled reservation stays so,
    and the cancel's key is the transaction's own), so a retry or the sweep may run this again."""
    intent = cancel_intent(txn) or {}
    provider = provider_for(core, txn.provider_id)
    if intent.get("hold_id"):
        await provider.release_hold(intent["hold_id"])
    if txn.reservation_id:
        await provider.cancel(txn.reservation_id, idempotency_key=f"{txn.id}:cancel")

    async def write(session: Any) -> TransactionView:
        now = clock.now()
        row = (await session.execute(
            update(Transaction)
            .where(Transaction.id == txn.id, Transaction.status == intent.get("previous_status", txn.status))
            .values(status="cancelled", cancelled_at=now, cancel_reason=intent.get("reason"), pending_action=None,
                    updated_at=now)
            .returning(Transaction)
        )).scalar_one_or_none()
        if row is None:
            row = await get_transaction_row(session, txn.organization_id, txn.id)
            if row.status == "cancelled":
                return view(row)  # finished by a concurrent retry or the sweep
            raise InvalidState(f"Transaction {txn.id} changed while it was being cancelled.")
        await audit(session, row, "transaction.cancelled", intent.get("actor", SYSTEM_ACTOR), reason=intent.get("reason"),
                    data={"previousStatus": intent.get("previous_status"), "reservationId": txn.reservation_id})
        await publish(session, row, "transaction.cancelled")
        return view(row)

    return await record_after_provider(core, write, "cancellation", claim)


async def finish_interrupted_cancels(core: Core) -> int:
    """Finish accepted cancels whose request died or failed after the provider was asked.

    Only intents older than ``idempotency_stale_seconds`` are taken, so a request still in
    flight finishes its own. Failures are logged and tried again on the next run."""
    stale = clock.now() - timedelta(seconds=core.settings.idempotency_stale_seconds)
    async with core.db.unit_of_work(read_only=True) as session:
        rows = list((await session.execute(
            select(Transaction).where(Transaction.pending_action["kind"].as_string() == "cancel").limit(100)
        )).scalars())
    done = 0
    for txn in rows:
        if datetime.fromisoformat(txn.pending_action["requested_at"]) > stale:  # type: ignore[index]
            continue
        try:
            await _finish_cancel(core, txn)
            done += 1
        except Exception as exc:  # noqa: BLE001 - one stuck cancel must not stop the others
            log.warning("interrupted_cancel_not_finished", transaction_id=txn.id, error=type(exc).__name__)
    return done


async def get_transaction(session: AsyncSession, principal: Principal, transaction_id: str) -> TransactionDetail:
    """A transaction with its audit trail, read in the caller's ``session``. TransactionNotFound for
    another organization's or the other mode's; ScenarioNotAllowed (Forbidden ``scenario_not_allowed``)
    for a scenario the key is not scoped to."""
    txn = await get_transaction_for(session, principal, transaction_id)
    base = await view_with_approval(session, txn)
    events = await audit_service.events_for(
        session, organization_id=principal.organization_id, subject_type=SUBJECT, subject_id=txn.id
    )
    return TransactionDetail(
        **base.model_dump(),
        events=[AuditEventView.model_validate(e, from_attributes=True) for e in events],
    )
