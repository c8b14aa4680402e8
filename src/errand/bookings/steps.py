"""The steps booking and modifying share: what policies see of an action, their verdict (a denial
audited before it is raised), the action an approval is bound to, asking for and voiding an approval,
and how long a hold lasts."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from errand.audit import service as audit_service
from errand.bookings.common import SUBJECT, audit, local_iso
from errand.guard import service as guard_service
from errand.guard.schemas import ActionContext, Decision
from errand.identity.schemas import Principal
from errand.kit import clock, timing
from errand.kit.core import Core
from errand.models import Approval, Transaction


def policy_context(principal: Principal, operation: str, txn_fields: dict[str, Any], local: Any,
                   party_size: int, price: Decimal, amount: Decimal, starts_at: Any) -> ActionContext:
    """What policies see of a restaurant booking or change (the CEL ``request`` fields)."""
    return ActionContext(
        organization_id=principal.organization_id,
        amount_usd=float(amount),
        local_hour=local.hour,
        fields={
            "scenario": "restaurant",
            "operation": operation,
            "restaurantName": txn_fields["restaurant_name"],
            "city": txn_fields["city"],
            "partySize": party_size,
            "amountUsd": float(amount),
            "pricePerPersonUsd": float(price),
            "datetime": clock.iso(starts_at),
            "localTime": local.strftime("%H:%M"),
            "localHour": local.hour,
            "weekday": local.weekday(),
            "keyEnv": principal.env,
        },
    )


async def judge(core: Core, principal: Principal, ctx: ActionContext, denied_subject: tuple[str, str]) -> Decision:
    """The policies' verdict on ``ctx``. A denial is audited about ``denied_subject`` (in a unit of
    work of its own, committed) and raised as PolicyViolation; a rate-limit breach is RateLimited."""
    with timing.phase("policy"):
        decision = await guard_service.policies.evaluate(core, ctx)
    if decision.outcome == "deny":
        async with core.db.unit_of_work() as session:
            await audit_service.record(
                session, organization_id=principal.organization_id, subject_type=denied_subject[0],
                subject_id=denied_subject[1], type="policy.denied", actor=principal.actor, decision="deny",
                reason=decision.reason,
                data={"policyId": decision.policy_id, "operation": ctx.fields["operation"],
                      "amountUsd": ctx.amount_usd, "partySize": ctx.fields["partySize"]},
            )
        raise guard_service.PolicyViolation(
            f"Policy '{decision.policy_name}' ({decision.policy_id}) denied this request: {decision.reason}.",
            details={"policyId": decision.policy_id, "policyName": decision.policy_name},
        )
    return decision


def action_for(operation: str, provider_id: str, venue_id: str, name: str, city: str, local: Any,
               party_size: int, amount: Decimal) -> dict[str, Any]:
    """The canonical action an approval is bound to (no personal data)."""
    return {
        "operation": operation, "providerId": provider_id, "venueId": venue_id, "restaurantName": name,
        "city": city, "localStart": local_iso(local), "partySize": party_size, "amountUsd": str(amount),
    }


async def request_approval(session: AsyncSession, core: Core, txn: Transaction, decision: Decision,
                           action: dict[str, Any], amount: Decimal, actor: str) -> Approval:
    """Ask for a human decision on ``action`` for ``txn`` (expiring after ``approval_ttl_minutes``), audited."""
    approval = await guard_service.approvals.request(
        session, organization_id=txn.organization_id, env=txn.env, scenario=txn.scenario,
        subject_type=SUBJECT, subject_id=txn.id,
        action=action, amount_usd=amount, policy_id=decision.policy_id,
        message=(f"{action['operation'].capitalize()} {action['restaurantName']} ({action['city']}) for "
                 f"{action['partySize']} at {action['localStart']} local, ${amount}. "
                 f"Policy '{decision.policy_name}': {decision.reason}."),
        ttl=timedelta(minutes=core.settings.approval_ttl_minutes),
    )
    await audit(session, txn, "approval.requested", actor, decision="requires_approval",
                reason=decision.reason, data={"approvalId": approval.id, "policyId": decision.policy_id,
                                              "actionDigest": approval.action_digest, "amountUsd": str(amount)})
    return approval


def hold_ttl(core: Core) -> int:
    """Seconds a hold lasts while its approval is pending."""
    # The hold outlives the approval, so an approval decided in time always finds its capacity.
    return core.settings.approval_ttl_minutes * 60 + 300


async def void_pending_approval(session: AsyncSession, txn: Transaction, actor: str, why: str) -> None:
    """Void the approval ``txn`` waits on, if any, and audit why: its action is no longer wanted."""
    approval = await guard_service.approvals.pending_for(session, txn.organization_id, SUBJECT, txn.id)
    if approval is not None:
        await guard_service.approvals.transition(session, approval, "void")
        await audit(session, txn, "approval.voided", actor, decision="void", reason=why,
                    data={"approvalId": approval.id})
