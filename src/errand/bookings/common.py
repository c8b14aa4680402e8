"""Helpers shared by the booking service and the approval decisions."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.audit import service as audit_service
from errand.bookings.schemas import ApprovalSummary, Customer, TransactionView
from errand.guard import service as guard_service
from errand.identity.schemas import Principal
from errand.kit import clock
from errand.kit.core import Core
from errand.kit.errors import DomainError, Forbidden, InvalidRequest, NotFound, Unavailable
from errand.models import Approval, Transaction

SUBJECT = "transaction"
SYSTEM_ACTOR = "system"
OPEN_STATUSES = ("confirmed", "modified", "requires_approval")


def require_scenario(principal: Principal, scenario: str) -> None:
    if scenario not in principal.scenarios:
        raise Forbidden(
            "scenario_not_allowed",
            f"This API key may not act on the {scenario} scenario (allowed: {', '.join(principal.scenarios)}).",
        )


def provider_for(core: Core, provider_id: str) -> Any:
    provider = core.providers.get(provider_id)
    if provider is None:
        raise Unavailable("provider_unavailable", f"Provider {provider_id} is not configured on this server.")
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
    """Raises InvalidRequest naming ``field`` unless the local time is ahead (and representable in UTC)."""
    try:
        starts_at = to_utc(local, timezone)
    except OverflowError:
        raise _out_of_range(field) from None
    if starts_at <= clock.now():
        raise InvalidRequest(
            f"{field}: must be in the future (got {local.isoformat(timespec='minutes')} {timezone}).",
            details=[{"field": field, "message": "must be in the future"}],
        )


def local_iso(local: datetime) -> str:
    return local.isoformat(timespec="minutes")


def amount_for(price_per_person: Decimal, party_size: int) -> Decimal:
    return (price_per_person * party_size).quantize(Decimal("0.01"))


async def get_transaction_row(session: AsyncSession, organization_id: str, transaction_id: str) -> Transaction:
    txn = (
        await session.execute(
            select(Transaction).where(Transaction.id == transaction_id, Transaction.organization_id == organization_id)
        )
    ).scalar_one_or_none()
    if txn is None:
        raise NotFound("not_found", f"Transaction {transaction_id} not found.")
    return txn


async def audit(
    session: AsyncSession, txn: Transaction, type: str, actor: str, *,
    decision: str | None = None, reason: str | None = None, data: dict[str, Any] | None = None,
) -> None:
    await audit_service.record(
        session, organization_id=txn.organization_id, subject_type=SUBJECT, subject_id=txn.id,
        type=type, actor=actor, decision=decision, reason=reason, data=data,
    )


def view(txn: Transaction, approval: Approval | None = None) -> TransactionView:
    pending = txn.pending_action or {}
    return TransactionView(
        id=txn.id,
        status=txn.status,
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
        cancelled_at=txn.cancelled_at,
        cancel_reason=txn.cancel_reason,
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


def policy_error(decision: Any) -> DomainError:
    return Forbidden(
        "policy_violation",
        f"Policy '{decision.policy_name}' ({decision.policy_id}) denied this request: {decision.reason}.",
        details={"policyId": decision.policy_id, "policyName": decision.policy_name},
    )
