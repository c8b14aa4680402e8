"""Guard-rail policies and their evaluation.

Each type has a typed config checked when the policy is saved; a CUSTOM rule is a CEL
expression over ``request`` that must keep within size limits (length, syntax-tree nodes,
comprehension nesting) and is trial-evaluated within a CPU-time budget at save time, so a
broken or runaway rule is a 400 then. At booking time a rule that still fails to evaluate
(a field absent for this action) or overruns its budget fails closed: a denial
(403 POLICY_VIOLATION) that names the policy and says why in CEL terms.

CEL runs on cel-python, with the limits, the budget and its fixes in :mod:`errand.guard.cel`.
``common-expression-language`` (Rust) was measured too: ~100× faster, but it has no cost or
time limit, exposes no syntax tree for the save-time limits, and holds the GIL for a whole
evaluation, so a runaway rule could neither be stopped nor kept from freezing the event loop.
cel-python's interpreter checks our deadline at every node, so an overrun stops where it is.

Several policies: deny beats requires_approval beats allow. RATE_LIMIT policies are
counted only for actions no other policy denies, and a breach is :class:`RateLimited`.

Evaluation reads the organization's policies from the process's
:class:`errand.guard.policy_cache.PolicyCache`; creating, changing or deleting one here drops
the organization's entry, so the next action is judged by the new policies.
"""

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.guard import cel, policy_cache
from errand.guard.errors import PolicyNotFound
from errand.guard.policy_cache import Rule
from errand.guard.schemas import (
    CONFIG_MODELS, ActionContext, Decision, PolicyCreate, PolicyUpdate, PolicyView,
)
from errand.kit import clock, inputs, metrics, tracing
from errand.kit.core import Core
from errand.kit.errors import InvalidRequest, RateLimited
from errand.kit.ids import new_id
from errand.models import Policy, get_owned

# A representative action, used to trial-evaluate CUSTOM rules when they are saved. It has every
# field of cel.FIELD_TYPES, the execution-job-only ones included.
SAMPLE_REQUEST: dict[str, Any] = {
    "scenario": "restaurant",
    "operation": "book",
    "restaurantName": "Golden Gate Grill",
    "venueName": "Golden Gate Grill",
    "city": "San Francisco",
    "partySize": 4,
    "amountUsd": 260.0,
    "pricePerPersonUsd": 65.0,
    "datetime": "2027-03-20T19:00:00Z",
    "localTime": "12:00",
    "localHour": 12,
    "weekday": 5,
    "keyEnv": "live",
    "providerId": "sandbox-tables",
}


def validate_config(policy_type: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config of a ``policy_type`` policy, checked and normalised; raises InvalidRequest naming
    each bad field. A CUSTOM rule is checked against the limits of :func:`errand.guard.cel.check`
    here; :func:`trial` evaluates it."""
    try:
        model = CONFIG_MODELS[policy_type].model_validate(config)
    except ValidationError as exc:
        issues = [{"field": i["path"], "message": i["message"]} for i in inputs.issues(exc, prefix=("config",))]
        summary = "; ".join(f"{i['field']}: {i['message']}" for i in issues)
        raise InvalidRequest(f"Invalid {policy_type} config: {summary}", details=issues) from None
    return model.model_dump(exclude_none=True)


async def trial(policy_type: str, config: dict[str, Any]) -> None:
    """Evaluate a CUSTOM rule once on :data:`SAMPLE_REQUEST`, off the event loop and within
    :data:`errand.guard.cel.BUDGET_SECONDS`; raises InvalidRequest if it fails or overruns."""
    if policy_type != "CUSTOM":
        return
    try:
        await cel.evaluate(config["rule"], SAMPLE_REQUEST)
    except cel.RuleError as exc:
        raise InvalidRequest(
            f"Invalid CUSTOM config: config.rule fails on a sample request: {exc}",
            details=[{"field": "config.rule", "message": str(exc)}],
        ) from None


def _view(policy: Policy) -> PolicyView:
    return PolicyView.model_validate(policy, from_attributes=True)


async def create(session: AsyncSession, organization_id: str, data: PolicyCreate) -> PolicyView:
    """Add a policy to the organization in ``session`` (not committed); the cache forgets the
    organization's policies. Raises InvalidRequest for a config its type refuses or a CUSTOM rule
    that fails its trial."""
    policy = Policy(
        id=new_id("pol"),
        organization_id=organization_id,
        name=data.name,
        type=data.type,
        config=validate_config(data.type, data.config),
        enabled=data.enabled,
    )
    await trial(policy.type, policy.config)
    session.add(policy)
    await session.flush()
    await policy_cache.forget(session, organization_id)
    return _view(policy)


async def _get(session: AsyncSession, organization_id: str, policy_id: str) -> Policy:
    """The organization's policy ``policy_id``, else PolicyNotFound (404; NOT_FOUND in the reservations dialect)."""
    return await get_owned(session, Policy, policy_id, PolicyNotFound(f"Policy {policy_id} not found."),
                           organization_id=organization_id)


async def list_all(session: AsyncSession, organization_id: str) -> list[PolicyView]:
    """The organization's policies, oldest first."""
    rows = await session.execute(
        select(Policy).where(Policy.organization_id == organization_id).order_by(Policy.created_at, Policy.id)
    )
    return [_view(p) for p in rows.scalars()]


async def update(session: AsyncSession, organization_id: str, policy_id: str, data: PolicyUpdate) -> PolicyView:
    """Change a policy's name, config or enabled flag in ``session`` (not committed). Raises
    PolicyNotFound, or InvalidRequest as :func:`create` does."""
    policy = await _get(session, organization_id, policy_id)
    if data.name is not None:
        policy.name = data.name
    if data.config is not None:
        config = validate_config(policy.type, data.config)
        await trial(policy.type, config)
        policy.config = config
    if data.enabled is not None:
        policy.enabled = data.enabled
    policy.updated_at = clock.now()
    await session.flush()
    await policy_cache.forget(session, organization_id)
    return _view(policy)


async def delete(session: AsyncSession, organization_id: str, policy_id: str) -> None:
    """Delete a policy in ``session`` (not committed). Raises PolicyNotFound."""
    await session.delete(await _get(session, organization_id, policy_id))
    await session.flush()
    await policy_cache.forget(session, organization_id)


async def _judge(policy: Rule, ctx: ActionContext) -> tuple[str, str | None]:
    """One policy's verdict on an action, other than rate limits."""
    cfg = policy.config
    if policy.type == "SPENDING_LIMIT":
        if ctx.amount_usd > cfg["maxAmountUsd"]:
            return "deny", f"amount ${ctx.amount_usd:.2f} exceeds the limit of ${cfg['maxAmountUsd']:.2f}"
    elif policy.type == "TIME_RESTRICTION":
        start, end = cfg["allowedHours"]
        h = ctx.local_hour
        inside = start <= h < end if start < end else (h >= start or h < end)
        if not inside:
            return "deny", f"local hour {h} is outside the allowed hours [{start}, {end})"
    elif policy.type == "APPROVAL_REQUIRED":
        threshold = cfg.get("threshold")
        if threshold is None or ctx.amount_usd > threshold:
            why = "every booking" if threshold is None else f"amount ${ctx.amount_usd:.2f} is above ${threshold:.2f}"
            return "requires_approval", f"approval required: {why}"
    elif policy.type == "CUSTOM":
        try:
            matched = await cel.evaluate(cfg["rule"], ctx.fields)
        except cel.RuleError as exc:  # fail closed, naming the policy
            return "deny", f"its rule could not be evaluated for this request ({exc}); failing closed"
        if matched:
            return cfg.get("action", "deny"), cfg.get("message") or f"rule matched: {cfg['rule']}"
    return "allow", None


@tracing.traced("policy.evaluate")
async def evaluate(core: Core, ctx: ActionContext) -> Decision:
    """The verdict of ``ctx.organization_id``'s enabled policies on an action, from the process's
    policy cache (no session needed; the database is read on a miss only). Raises RateLimited on
    a RATE_LIMIT breach (counted in ``core.rate_limits``), Unavailable when the policies must be
    read and the database cannot be reached."""
    policies = await core.policy_cache.rules(ctx.organization_id)
    rate_limits = core.rate_limits
    decision = Decision()
    for policy in policies:
        if policy.type == "RATE_LIMIT":
            continue
        outcome, reason = await _judge(policy, ctx)
        decision.evaluated.append({"policyId": policy.id, "type": policy.type, "outcome": outcome})
        rank = {"allow": 0, "requires_approval": 1, "deny": 2}
        if rank[outcome] > rank[decision.outcome]:
            decision.outcome, decision.policy_id, decision.policy_name = outcome, policy.id, policy.name
            decision.reason = reason
    metrics.policy_decided(decision.outcome)
    if decision.outcome == "deny":
        return decision
    for policy in policies:
        if policy.type != "RATE_LIMIT":
            continue
        limit = policy.config["maxRequestsPerHour"]
        retry_after = await rate_limits.hit_policy_hourly(policy.id, limit)
        if retry_after is not None:
            raise RateLimited(
                f"Policy '{policy.name}' ({policy.id}) allows {limit} requests per hour; retry in {retry_after}s.",
                retry_after=retry_after,
                details={"policyId": policy.id},
            )
    return decision
