"""Modify a booking: a new time, party size or customer, with capacity and policies checked again.

A change runs in named steps around the provider call, as a booking does
(:mod:`errand.bookings.service`): the transaction is read (:func:`_modifiable`), the change worked
out against what the caller sees (:func:`_work_out`), judged when the slot moves, carried out at the
provider (:func:`_apply_change`) and recorded after (:func:`_record_change`). A change while an
approval is pending voids that approval; a change that needs approval holds the new slot and keeps
the current booking until it is decided.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.bookings.common import (
    OPEN_STATUSES, SUBJECT, amount_for, audit, cancel_intent, get_transaction_for, provider_for, publish,
    record_after_provider, require_future, to_local, to_utc, view, view_with_approval,
)
from errand.bookings.schemas import BookingChanges, TransactionView
from errand.bookings.steps import (
    action_for, hold_ttl, judge, policy_context, request_approval, void_pending_approval,
)
from errand.guard import service as guard_service
from errand.guard.schemas import Decision
from errand.identity.schemas import Principal
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import InvalidRequest, InvalidState
from errand.models import Transaction
from errand.providers.base import Guest
from errand.providers.errors import NoAvailability


async def modify(core: Core, principal: Principal, transaction_id: str, changes: BookingChanges,
                 idempotency_key: str | None) -> tuple[TransactionView, bool]:
    """Change the time, party size or customer of a booking, re-checking capacity and policies.

    A change while an approval is pending voids that approval; the new action needs its own.
    """
    if changes.party_size is None and changes.starts_at is None and changes.customer is None:
        raise InvalidRequest("updates: give at least one of partySize, datetime, customer.",
                             details=[{"field": "updates", "message": "no change requested"}])

    async def operation(claim: guard_service.Claim) -> dict[str, Any]:
        return (await _modify(core, principal, transaction_id, changes, claim)).model_dump(mode="json")

    result = await guard_service.run_idempotent(
        core, organization_id=principal.organization_id, env=principal.env,
        scope="restaurant.modify",
        key=idempotency_key, request={"transactionId": transaction_id, "updates": changes.model_dump(mode="json")},
        operation=operation,
    )
    return TransactionView.model_validate(result.value), result.replayed


@dataclass(frozen=True)
class _Change:
    """A requested change worked out against the booking as the caller now sees it (a pending
    change, not the confirmed booking, is current): the new slot, customer and amount."""

    txn: Transaction
    pending: dict[str, Any]  # the transaction's pending action, copied
    local: datetime  # the new venue-local start
    party_size: int
    customer: dict[str, Any]
    amount: Decimal
    starts_at: datetime  # the new start in UTC
    slot_changed: bool  # time or party size differ from the current ones
    requested: list[str]  # the fields the caller asked to change, as the audit names them

    @property
    def guest(self) -> Guest:
        return Guest(**self.customer)


async def _modify(core: Core, principal: Principal, transaction_id: str, changes: BookingChanges,
                  claim: guard_service.Claim) -> TransactionView:
    """Judge the change (when the slot moves), carry it out at the provider, then record it."""
    txn = await _modifiable(core, principal, transaction_id)
    change = _work_out(txn, changes)
    decision = Decision()
    if change.slot_changed:
        names = {"restaurant_name": txn.venue_name, "city": txn.city}
        ctx = policy_context(principal, "modify", names, change.local, change.party_size, txn.price_per_person_usd,
                       change.amount, change.starts_at)
        decision = await judge(core, principal, ctx, (SUBJECT, txn.id))
    provider = provider_for(core, txn.provider_id)
    action = action_for("modify" if txn.reservation_id else "book", provider.id, txn.venue_id, txn.venue_name,
                     txn.city, change.local, change.party_size, change.amount)
    fields = await _apply_change(core, provider, change, decision, action, claim.downstream_key)

    async def write(session: AsyncSession) -> TransactionView:
        return await _record_change(session, core, principal, change, decision, action, fields)

    return await record_after_provider(core, write, "change", claim)


async def _modifiable(core: Core, principal: Principal, transaction_id: str) -> Transaction:
    """The caller's transaction, if it is still open (else InvalidState) and no cancel is under way."""
    async with core.db.unit_of_work(read_only=True) as session:
        txn = await get_transaction_for(session, principal, transaction_id)
    if txn.status not in OPEN_STATUSES or cancel_intent(txn):
        raise InvalidState(f"Transaction {txn.id} is {view(txn).status} and cannot be modified.")
    return txn


def _work_out(txn: Transaction, changes: BookingChanges) -> _Change:
    """``changes`` applied to what the caller sees of ``txn``; raises InvalidRequest for a new time
    that is past or out of range (``updates.datetime``)."""
    pending = dict(txn.pending_action or {})
    old_local = to_local(txn.starts_at, txn.timezone)
    if pending.get("action"):  # a pending change is what the caller now sees as current
        old_local = datetime.fromisoformat(pending["action"]["localStart"])
    old_party = pending.get("action", {}).get("partySize", txn.party_size)
    new_local = to_local(changes.starts_at, txn.timezone, "updates.datetime") if changes.starts_at else old_local
    if changes.starts_at:
        require_future(new_local, txn.timezone, "updates.datetime")
    new_party = changes.party_size or old_party
    customer = view(txn).customer.model_dump()
    if changes.customer:
        customer.update(changes.customer.model_dump(exclude_unset=True))
    requested = [f for f, v in (("partySize", changes.party_size), ("datetime", changes.starts_at),
                                ("customer", changes.customer)) if v is not None]
    return _Change(txn=txn, pending=pending, local=new_local, party_size=new_party, customer=customer,
                   amount=amount_for(txn.price_per_person_usd, new_party), starts_at=to_utc(new_local, txn.timezone),
                   slot_changed=(new_local, new_party) != (old_local, old_party), requested=requested)


async def _apply_change(core: Core, provider: Any, change: _Change, decision: Decision, action: dict[str, Any],
                        downstream_key: str) -> dict[str, Any]:
    """Carry the change out at the provider: hold the new slot when it needs approval, else modify
    (or, for a booking that no longer needs approval, book) it. Returns the transaction's columns
    to write; a hold the change makes stale is released."""
    txn, pending = change.txn, change.pending
    old_hold = pending.get("hold_id")
    fields: dict[str, Any] = {"customer": change.customer, "updated_at": clock.now()}
    if change.slot_changed and decision.outcome == "requires_approval":
        hold = await _rehold(core, provider, txn, pending, change.local, change.party_size, change.guest,
                             downstream_key)
        old_hold = None  # released by _rehold when it had to make room
        fields.update(status="requires_approval", pending_action={
            "kind": action["operation"], "hold_id": hold.hold_id, "action": action,
            "previous_status": pending.get("previous_status", txn.status)})
    elif change.slot_changed or txn.status != "requires_approval":
        fields.update(await _rebook(provider, change, downstream_key))
    else:  # only the customer changed on a booking still awaiting approval
        fields["status"] = txn.status
        if pending:
            fields["pending_action"] = pending
    if change.slot_changed and old_hold:
        await provider.release_hold(old_hold)
    return fields


async def _rebook(provider: Any, change: _Change, downstream_key: str) -> dict[str, Any]:
    """Modify the reservation at the provider (or book a pending booking that no longer needs
    approval); the transaction's columns that follow."""
    txn = change.txn
    if txn.reservation_id:
        reservation = await provider.modify(txn.reservation_id, start=change.local, party_size=change.party_size,
                                            guest=change.guest, idempotency_key=downstream_key)
        status = "modified"
    else:
        reservation = await provider.book(txn.venue_id, change.local, change.party_size, change.guest,
                                          idempotency_key=downstream_key)
        status = "confirmed"
    return {"status": status, "reservation_id": reservation.reservation_id, "confirmation": reservation.confirmation,
            "party_size": change.party_size, "starts_at": change.starts_at, "amount_usd": change.amount,
            "pending_action": None}


async def _record_change(session: AsyncSession, core: Core, principal: Principal, change: _Change, decision: Decision,
                         action: dict[str, Any], fields: dict[str, Any]) -> TransactionView:
    """Write the change (only if the transaction has not moved since it was read: else InvalidState),
    void an approval it makes stale, audit it and ask for a new approval when it needs one."""
    txn = change.txn
    if change.slot_changed and txn.status == "requires_approval":
        await void_pending_approval(session, txn, principal.actor, "the requested action changed")
    row = (await session.execute(
        update(Transaction)
        .where(Transaction.id == txn.id, Transaction.organization_id == principal.organization_id,
               Transaction.status == txn.status, Transaction.updated_at == txn.updated_at)
        .values(**fields)
        .returning(Transaction)
    )).scalar_one_or_none()
    if row is None:
        raise InvalidState(f"Transaction {txn.id} changed while it was being modified.")
    await audit(session, row, "transaction.modified", principal.actor, decision=decision.outcome,
                reason=decision.reason, data={"changed": change.requested, "action": action,
                                              "policies": decision.evaluated})
    if row.status in ("confirmed", "modified"):
        # Carried out at the provider (a booking still awaiting approval reports its approval instead).
        await publish(session, row, f"transaction.{row.status}")
    if fields["status"] == "requires_approval" and change.slot_changed:
        approval = await request_approval(session, core, row, decision, action, change.amount, principal.actor)
        row.pending_action = {**fields["pending_action"], "approval_id": approval.id}
        await session.flush()
        return view(row, approval)
    return await view_with_approval(session, row)


async def _rehold(core: Core, provider: Any, txn: Transaction, pending: dict[str, Any], local: datetime,
                  party_size: int, guest: Guest, downstream_key: str) -> Any:
    """Hold the changed action. When the booking's own pending hold is what stands in the way
    (a smaller party at the same slot), release it and hold again; if the change still does
    not fit, hold the original action again so nothing is lost, and report no availability."""
    ttl = hold_ttl(core)
    old_hold = pending.get("hold_id")
    try:
        hold = await provider.hold(txn.venue_id, local, party_size, guest, ttl_seconds=ttl,
                                   idempotency_key=downstream_key)
    except NoAvailability:
        if not old_hold:
            raise
        await provider.release_hold(old_hold)
        try:
            return await provider.hold(txn.venue_id, local, party_size, guest, ttl_seconds=ttl,
                                       idempotency_key=f"{downstream_key}:after-release")
        except NoAvailability:
            original = pending["action"]
            restored = await provider.hold(txn.venue_id, datetime.fromisoformat(original["localStart"]),
                                           original["partySize"], guest, ttl_seconds=ttl,
                                           idempotency_key=f"{downstream_key}:restore")
            async with core.db.unit_of_work() as session:
                await session.execute(update(Transaction).where(Transaction.id == txn.id).values(
                    pending_action={**pending, "hold_id": restored.hold_id}))
            raise
    if old_hold:
        await provider.release_hold(old_hold)
    return hold
