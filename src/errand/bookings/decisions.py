"""Carrying out human decisions on bookings that await approval.

A decision is recorded first (a conditional update, so two approvers cannot both win),
then carried out at the provider, then written to the transaction. If the process dies in
between, :func:`finish_decided` completes the work later; provider calls carry keys derived
from the approval, so finishing twice books once.

This module is the ``transaction`` approval subject (:class:`errand.approvals.subjects.SubjectHandler`).
"""

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update

from errand.bookings.common import (
    SUBJECT, SYSTEM_ACTOR, amount_for, audit, get_transaction_row, provider_for, publish, record_after_provider,
    to_utc, view,
)
from errand.bookings.schemas import TransactionView
from errand.guard import service as guard_service
from errand.identity.schemas import Principal
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import Conflict, InvalidState
from errand.models import Approval, Transaction
from errand.providers.errors import NoAvailability

Decision = Literal["approved", "denied"]
subject_type = SUBJECT


async def decide(core: Core, principal: Principal, approval: Approval, decision: Decision,
                 note: str | None) -> str | None:
    """Approve (the exact action asked for is executed, capacity re-checked) or deny ``approval``
    (as loaded for ``principal``); returns the transaction's new status, None when there was
    nothing left to carry out. InvalidState when it is not pending, has expired (it is expired
    here) or no longer matches its transaction (it is voided); NoAvailability from the provider
    puts the approval back to pending.

    Who may decide is checked by the caller (errand.approvals)."""
    expired = False
    async with core.db.unit_of_work() as session:
        approval = await guard_service.approvals.get(session, principal.organization_id, approval.id)
        if approval.status != "pending":
            raise InvalidState(f"Approval {approval.id} is already {approval.status}.")
        if approval.expires_at <= clock.now():
            expired = True
        else:
            txn = await get_transaction_row(session, approval.organization_id, approval.subject_id)
            pending = txn.pending_action or {}
            bound = (txn.status == "requires_approval" and pending.get("approval_id") == approval.id
                     and guard_service.approvals.action_digest(pending.get("action", {})) == approval.action_digest)
            if not bound:
                await guard_service.approvals.transition(session, approval, "void")
                await audit(session, txn, "approval.voided", SYSTEM_ACTOR, decision="void",
                            reason="the transaction no longer matches the approved action",
                            data={"approvalId": approval.id})
            else:
                await guard_service.approvals.transition(session, approval, decision,
                                                         decided_by=principal.actor, note=note)
                await audit(session, txn, f"approval.{decision}", principal.actor, decision=decision, reason=note,
                            data={"approvalId": approval.id, "actionDigest": approval.action_digest})
    if expired:
        await expire(core, approval)
        raise InvalidState(f"Approval {approval.id} expired at {clock.iso(approval.expires_at)}.")
    if not bound:
        raise InvalidState(f"Approval {approval.id} no longer matches its transaction and was voided.")
    try:
        txn_view = await _carry_out(core, approval.id, principal.organization_id, principal.actor)
    except NoAvailability:
        async with core.db.unit_of_work() as session:
            approval = await guard_service.approvals.get(session, principal.organization_id, approval.id)
            await guard_service.approvals.transition(session, approval, "pending", from_status="approved")
        raise
    return txn_view.status if txn_view is not None else None


async def expire(core: Core, approval: Approval) -> None:
    """Expire a pending approval and release what its transaction held."""
    async with core.db.unit_of_work() as session:
        # The caller loaded ``approval`` in a session that is closed now; work on this one's copy.
        approval = await guard_service.approvals.get(session, approval.organization_id, approval.id)
        try:
            await guard_service.approvals.transition(session, approval, "expired")
        except Conflict:
            return  # decided or expired by someone else meanwhile
        txn = await get_transaction_row(session, approval.organization_id, approval.subject_id)
        await audit(session, txn, "approval.expired", SYSTEM_ACTOR, decision="expired",
                    reason=f"no decision before {clock.iso(approval.expires_at)}", data={"approvalId": approval.id})
    await _carry_out(core, approval.id, approval.organization_id, SYSTEM_ACTOR)


async def _carry_out(core: Core, approval_id: str, organization_id: str, actor: str) -> TransactionView | None:
    """Apply a decided approval to its transaction, once; None if there is nothing left to do."""
    async with core.db.unit_of_work(read_only=True) as session:
        approval = await guard_service.approvals.get(session, organization_id, approval_id)
        txn = await get_transaction_row(session, organization_id, approval.subject_id)
        pending: dict[str, Any] = dict(txn.pending_action or {})
        if txn.status != "requires_approval" or pending.get("approval_id") != approval.id:
            return None
    provider = provider_for(core, txn.provider_id)
    values: dict[str, Any] = {"pending_action": None, "updated_at": clock.now()}
    if approval.status == "approved":
        reservation = await provider.confirm_hold(pending["hold_id"], idempotency_key=f"{approval.id}:confirm")
        if pending["kind"] == "modify" and txn.reservation_id:
            await provider.cancel(txn.reservation_id, idempotency_key=f"{approval.id}:replace")
        action = pending["action"]
        local = datetime.fromisoformat(action["localStart"])
        values.update(
            status="confirmed" if pending["kind"] == "book" else "modified",
            reservation_id=reservation.reservation_id, confirmation=reservation.confirmation,
            party_size=action["partySize"], starts_at=to_utc(local, txn.timezone),
            amount_usd=amount_for(txn.price_per_person_usd, action["partySize"]),
        )
        event = "transaction.confirmed" if pending["kind"] == "book" else "transaction.modified"
    else:
        await provider.release_hold(pending["hold_id"])
        if pending["kind"] == "book":
            values["status"] = "denied" if approval.status == "denied" else "expired"
        else:
            values["status"] = pending.get("previous_status", "confirmed")
        event = f"transaction.{values['status']}" if pending["kind"] == "book" else "transaction.change_dropped"

    async def write(session: Any) -> TransactionView | None:
        row = (await session.execute(
            update(Transaction)
            .where(Transaction.id == txn.id, Transaction.status == "requires_approval")
            .values(**values)
            .returning(Transaction)
        )).scalar_one_or_none()
        if row is None:
            return None
        await audit(session, row, event, actor, decision=approval.status,
                    reason=f"approval {approval.id} {approval.status}",
                    data={"approvalId": approval.id, "reservationId": row.reservation_id})
        if approval.status == "approved":
            await publish(session, row, event)
        return view(row, approval)

    # Not recorded in the end: finish_decided carries the decision out again, under the same keys.
    return await record_after_provider(core, write, "decision")


async def finish_decided(core: Core) -> int:
    """Complete decisions whose carrying-out was interrupted (a crash after the decision); returns
    how many were finished. Periodic, through :mod:`errand.approvals.tasks`."""
    async with core.db.unit_of_work(read_only=True) as session:
        rows = (
            await session.execute(
                select(Approval.id, Approval.organization_id)
                .join(Transaction, Transaction.id == Approval.subject_id)
                .where(Approval.subject_type == SUBJECT, Transaction.status == "requires_approval",
                       Approval.status.in_(("approved", "denied", "expired")))
                .limit(100)
            )
        ).all()
    done = 0
    for approval_id, organization_id in rows:
        if await _carry_out(core, approval_id, organization_id, SYSTEM_ACTOR) is not None:
            done += 1
    return done

