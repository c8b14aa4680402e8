"""Helpers shared by the booking service and the approval decisions."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from errand.audit import service as audit_service
from errand.bookings.errors import TransactionNotFound
from errand.bookings.schemas import ApprovalSummary, Customer, TransactionView
from errand.guard import service as guard_service
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import clock, limits
from errand.kit.core import Core
from errand.kit.errors import DatabaseUnavailable, InvalidRequest, Unavailable
from errand.kit.logging import get_logger
from errand.models import Approval, Transaction, get_owned
from errand.outbox import service as outbox_service
from errand.providers.errors import ProviderUnavailable

SUBJECT = "transaction"
SYSTEM_ACTOR = "system"
OPEN_STATUSES = ("confirmed", "modified", "requires_approval")
# How often the write that follows a successful provider call is tried before giving up.
RECORD_ATTEMPTS = 3

T = TypeVar("T", bound=TransactionView | None)
log = get_logger("errand.bookings")


def cancel_intent(txn: Transaction) -> dict[str, Any] | None:
    """The cancel being carried out at the provider for ``txn``, if one was accepted and not yet recorded."""
    pending = txn.pending_action or {}
    return pending if pending.get("kind") == "cancel" else None


async def record_after_provider(core: Core, write: Callable[[AsyncSession], Awaitable[T]], what: str,
                                claim: guard_service.Claim | None = None) -> T:
    """Write, in a unit of work of its own, what a provider has already done, and with it
    the request's idempotent answer (``claim.complete``), so both commit or neither does.

    The provider's side cannot be taken back, so a failing write (a database error, a busy
    or unreachable database) is tried again, ``RECORD_ATTEMPTS`` times with short pauses.
    A write that still fails raises Unavailable ``database_unavailable`` (503, never cached): the
    client's retry finds the provider's result under the same downstream key, and an
    accepted cancel is also finished by :func:`~errand.bookings.service.finish_interrupted_cancels`.
    Domain errors other than Unavailable (a Conflict: the row moved, or the claim was taken
    over by a retry) are raised at once.

    Own loop rather than a retry library: three tries of one database write, where the
    only policy is which exceptions count as transient.
    """
    failure: BaseException | None = None
    for attempt in range(RECORD_ATTEMPTS):
        if attempt:
            await asyncio.sleep(0.05 * 2 ** attempt)
        try:
            async with core.db.unit_of_work() as session:
                result = await write(session)
                if claim is not None and result is not None:
                    await claim.complete(session, result.model_dump(mode="json"))
            return result
        except Unavailable as exc:
            failure = exc
        except SQLAlchemyError as exc:
            failure = exc
        log.warning("provider_result_not_recorded", what=what, attempt=attempt + 1,
                    error=type(failure).__name__)
    raise DatabaseUnavailable(
        f"Errand could not record the {what} yet. Retry the same request (with the same Idempotency-Key "
        "if you sent one): it finds what the provider did and does not act twice.",
    ) from failure


def provider_for(core: Core, provider_id: str) -> Any:
    provider = core.providers.get(provider_id)
    if provider is None:
        raise ProviderUnavailable(None, f"Provider {provider_id} is not configured on this server.")
    return provider


def _out_of_range(field: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: is out of the range of representable dates.",
                          details=[{"field": field, "message": "out of range"}])


def to_local(value: datetime, timezone: str, field: str = "datetime") -> datetime:
    """A request time as naive venue-local time; a naive input is already local.

    Raises InvalidRequest for a time that cannot be shifted into the venue's zone (year 1 or 9999).
    """
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    except OverflowError:
        raise _out_of_range(field) from None


def to_utc(local: datetime, timezone: str) -> datetime:
    return clock.as_utc(local.replace(tzinfo=ZoneInfo(timezone)))


def require_future(local: datetime, timezone: str, field: str = "datetime") -> None:
    """Raises InvalidRequest naming ``field`` unless the local time is ahead (and representable in UTC)
    and within the booking horizon every dialect shares (:mod:`errand.kit.limits`)."""
    try:
        starts_at = to_utc(local, timezone)
    except OverflowError:
        raise _out_of_range(field) from None
    if starts_at <= clock.now():
        raise InvalidRequest(
            f"{field}: must be in the future (got {local.isoformat(timespec='minutes')} {timezone}).",
            details=[{"field": field, "message": "must be in the future"}],
        )
    limits.check_date(local.date(), field)


def local_iso(local: datetime) -> str:
    return local.isoformat(timespec="minutes")


def amount_for(price_per_person: Decimal, party_size: int) -> Decimal:
    return (price_per_person * party_size).quantize(Decimal("0.01"))


async def get_transaction_row(session: AsyncSession, organization_id: str, transaction_id: str,
                              env: str | None = None) -> Transaction:
    """A transaction of the organization (and of mode ``env`` when given); TransactionNotFound otherwise."""
    scope = {"organization_id": organization_id} | ({"env": env} if env is not None else {})
    return await get_owned(session, Transaction, transaction_id,
                           TransactionNotFound(f"Transaction {transaction_id} not found."), **scope)


async def get_transaction_for(session: AsyncSession, principal: Principal, transaction_id: str) -> Transaction:
    """A transaction as the calling key may act on it: its organization and mode (else TransactionNotFound,
    as if it did not exist) and one of its scenarios (else Forbidden ``scenario_not_allowed``)."""
    txn = await get_transaction_row(session, principal.organization_id, transaction_id, principal.env)
    identity_service.require_scenario(principal, txn.scenario)
    return txn


def audit_event(
    txn: Transaction, type: str, actor: str, *,
    decision: str | None = None, reason: str | None = None, data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An audit event about ``txn``, for :func:`errand.audit.service.record_all`."""
    return audit_service.event(
        organization_id=txn.organization_id, subject_type=SUBJECT, subject_id=txn.id,
        type=type, actor=actor, decision=decision, reason=reason, data=data,
    )


async def audit(
    session: AsyncSession, txn: Transaction, type: str, actor: str, *,
    decision: str | None = None, reason: str | None = None, data: dict[str, Any] | None = None,
) -> None:
    await audit_service.record_all(session, [audit_event(txn, type, actor, decision=decision, reason=reason,
                                                         data=data)])


async def publish(session: AsyncSession, txn: Transaction, event_type: str) -> None:
    """Record Errand's own event ``event_type`` (``transaction.confirmed`` / ``.modified`` /
    ``.cancelled``) about ``txn`` as just written, in ``session``'s transaction: called where the
    write that made the change succeeded, once per change. The payload has the booking's ids,
    status, venue, time, party size and amount, never the customer."""
    await outbox_service.record(
        session, organization_id=txn.organization_id, env=txn.env, event_type=event_type, subject_type=SUBJECT,
        subject_id=txn.id,
        payload={"transaction_id": txn.id, "status": txn.status, "scenario": txn.scenario,
                 "provider_id": txn.provider_id, "venue_name": txn.venue_name, "city": txn.city,
                 "starts_at": txn.starts_at, "party_size": txn.party_size, "amount_usd": txn.amount_usd,
                 "reservation_id": txn.reservation_id},
    )


def view(txn: Transaction, approval: Approval | None = None) -> TransactionView:
    """The transaction as callers see it. An accepted cancel reads ``cancelled`` from the moment it
    was accepted: the provider may already have let the table go, and the cancel is carried through."""
    pending = txn.pending_action or {}
    cancelling = cancel_intent(txn)
    return TransactionView(
        id=txn.id,
        status="cancelled" if cancelling else txn.status,
        scenario=txn.scenario,
        provider_id=txn.provider_id,
        restaurant_name=txn.venue_name,
        city=txn.city,
        timezone=txn.timezone,
        party_size=txn.party_size,
        starts_at=txn.starts_at,
        local_start=local_iso(clock.as_utc(txn.starts_at).astimezone(ZoneInfo(txn.timezone)).replace(tzinfo=None)),
        price_per_person_usd=float(txn.price_per_person_usd),
        amount_usd=float(txn.amount_usd),
        reservation_id=txn.reservation_id,
        confirmation=txn.confirmation,
        customer=Customer.model_validate(txn.customer),
        cancelled_at=datetime.fromisoformat(cancelling["requested_at"]) if cancelling else txn.cancelled_at,
        cancel_reason=cancelling.get("reason") if cancelling else txn.cancel_reason,
        approval=None if approval is None else ApprovalSummary(
            id=approval.id, status=approval.status, expires_at=approval.expires_at,
            amount_usd=float(approval.amount_usd), action_digest=approval.action_digest,
        ),
        pending_change=pending.get("action"),
        created_at=txn.created_at,
        updated_at=txn.updated_at,
    )


async def view_with_approval(session: AsyncSession, txn: Transaction) -> TransactionView:
    approval = None
    approval_id = (txn.pending_action or {}).get("approval_id")
    if approval_id:
        approval = await guard_service.approvals.get(session, txn.organization_id, approval_id)
    return view(txn, approval)

