"""Human approvals, each bound to one exact action.

An approval stores the canonical action and its SHA-256 digest and amount, shows both to
the approver, and is claimed with a conditional update so that two deciders can never
both win. It expires (recorded as ``expired``, never as a denial) and is voided when the
action it was asked for changes.

Each approval carries the mode (``env``) and scenario of what it gates. People reach
approvals through an admin key, which sees only its own mode's approvals (a test admin key
never sees a live approval, as in Stripe) and only its own scenarios'.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.guard.errors import ApprovalNotFound
from errand.guard.schemas import ApprovalView
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import clock, crypto
from errand.kit.errors import InvalidState
from errand.kit.ids import new_id
from errand.models import Approval, get_owned
from errand.outbox import service as outbox_service

STATUSES = ("pending", "approved", "denied", "expired", "void")
AUTOMATION_SCENARIO = "automation"
"""The scenario of an automation's approval gate: not one a key is scoped to, so every admin key
of the organization and mode sees and decides it whatever its scenarios."""
# Errand's own event (errand.outbox) an approval's new status reports: a decision, an expiry.
# Voiding (the action changed) and putting a decision back to pending report nothing.
_EVENT_FOR = {"approved": "approval.decided", "denied": "approval.decided", "expired": "approval.expired"}


def action_digest(action: dict[str, Any]) -> str:
    return crypto.sha256_hex(crypto.canonical_json(action))


def view(approval: Approval) -> ApprovalView:
    return ApprovalView.model_validate(approval, from_attributes=True)


async def request(
    session: AsyncSession,
    *,
    organization_id: str,
    env: str,
    scenario: str,
    subject_type: str,
    subject_id: str,
    action: dict[str, Any],
    amount_usd: Decimal,
    message: str,
    policy_id: str | None,
    ttl: timedelta,
) -> Approval:
    approval = Approval(
        id=new_id("appr"),
        organization_id=organization_id,
        env=env,
        scenario=scenario,
        subject_type=subject_type,
        subject_id=subject_id,
        policy_id=policy_id,
        status="pending",
        message=message,
        action=action,
        action_digest=action_digest(action),
        amount_usd=amount_usd,
        expires_at=clock.now() + ttl,
    )
    session.add(approval)
    await session.flush()
    await _publish(session, approval, "approval.requested")
    return approval


async def _publish(session: AsyncSession, approval: Approval, event_type: str) -> None:
    """Record ``event_type`` about ``approval`` in ``session``'s transaction. The payload names what
    it gates and the amount, never the approver's note nor the action's guest."""
    action = approval.action or {}
    await outbox_service.record(
        session, organization_id=approval.organization_id, env=approval.env, event_type=event_type,
        subject_type="approval", subject_id=approval.id,
        payload={"approval_id": approval.id, "status": approval.status, "scenario": approval.scenario,
                 "subject_type": approval.subject_type, "subject_id": approval.subject_id,
                 "amount_usd": approval.amount_usd,
                 "venue_name": action.get("venueName") or action.get("restaurantName"),
                 "policy_id": approval.policy_id, "expires_at": approval.expires_at,
                 "decision": approval.status if event_type == "approval.decided" else None},
    )


async def get(session: AsyncSession, organization_id: str, approval_id: str, env: str | None = None) -> Approval:
    """The approval ``approval_id`` of ``organization_id`` (and of mode ``env`` when given), else
    ApprovalNotFound ``approval_not_found``."""
    scope = {"organization_id": organization_id} | ({"env": env} if env is not None else {})
    return await get_owned(session, Approval, approval_id, ApprovalNotFound(f"Approval {approval_id} not found."),
                           **scope)


async def get_for(session: AsyncSession, principal: Principal, approval_id: str) -> Approval:
    """An approval as the caller may see it: NotFound ``approval_not_found`` for another organization's
    or the other mode's, Forbidden ``scenario_not_allowed`` for a scenario the key is not scoped to."""
    approval = await get(session, principal.organization_id, approval_id, principal.env)
    if approval.scenario != AUTOMATION_SCENARIO:
        identity_service.require_scenario(principal, approval.scenario)
    return approval


async def pending_for(session: AsyncSession, organization_id: str, subject_type: str, subject_id: str) -> Approval | None:
    return (
        await session.execute(
            select(Approval).where(
                Approval.organization_id == organization_id,
                Approval.subject_type == subject_type,
                Approval.subject_id == subject_id,
                Approval.status == "pending",
            )
        )
    ).scalar_one_or_none()


async def list_for(session: AsyncSession, principal: Principal, status: str | None, limit: int = 200) -> list[Approval]:
    """The caller's approvals, newest first: its organization, its mode, its scenarios (and the
    automations' gates, :data:`AUTOMATION_SCENARIO`, whatever its scenarios)."""
    query = select(Approval).where(Approval.organization_id == principal.organization_id,
                                   Approval.env == principal.env,
                                   or_(Approval.scenario.in_(principal.scenarios),
                                       Approval.scenario == AUTOMATION_SCENARIO))
    if status is not None:
        query = query.where(Approval.status == status)
    rows = await session.execute(query.order_by(Approval.created_at.desc(), Approval.id.desc()).limit(limit))
    return list(rows.scalars())


async def due_for_expiry(session: AsyncSession, now: datetime, limit: int = 100, *,
                         organization_id: str | None = None, env: str | None = None) -> list[Approval]:
    """Pending approvals past their deadline: every organization's (the periodic task), or only
    one organization's in one mode (a person listing their own)."""
    query = select(Approval).where(Approval.status == "pending", Approval.expires_at <= now)
    if organization_id is not None:
        query = query.where(Approval.organization_id == organization_id)
    if env is not None:
        query = query.where(Approval.env == env)
    rows = await session.execute(query.order_by(Approval.expires_at).limit(limit))
    return list(rows.scalars())


async def transition(
    session: AsyncSession,
    approval: Approval,
    status: str,
    *,
    decided_by: str | None = None,
    note: str | None = None,
    from_status: str = "pending",
) -> None:
    """Move an approval out of ``from_status``; InvalidState if someone else moved it first.

    A decision (approved, denied) and an expiry are recorded as Errand's own events
    (``approval.decided``, ``approval.expired``) in the same transaction."""
    now = clock.now()
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if decided_by is not None:
        values.update(decided_by=decided_by, decided_at=now, note=note)
    result = await session.execute(
        update(Approval).where(Approval.id == approval.id, Approval.status == from_status).values(**values)
    )
    if result.rowcount != 1:
        raise InvalidState(f"Approval {approval.id} is no longer {from_status}.")
    await session.refresh(approval)
    if status in _EVENT_FOR and from_status == "pending":
        await _publish(session, approval, _EVENT_FOR[status])
