"""Guard-rail policies and their evaluation.

Each type has a typed config checked when the policy is saved; a CUSTOM rule is a CEL
expression over ``request`` that is compiled and trial-evaluated at save time, so a
broken rule is a 400 then and never a 500 at booking time. At booking time a rule that
still fails to evaluate (a field absent for this action) fails closed as a denial that
names the policy.

Several policies: deny beats requires_approval beats allow. RATE_LIMIT policies are
counted only for actions no other policy denies, and a breach is :class:`RateLimited`.
"""

from typing import Any

import celpy
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.guard.rate_limits import RateLimits
from errand.guard.schemas import (
    CONFIG_MODELS, ActionContext, CustomConfig, Decision, PolicyCreate, PolicyUpdate, PolicyView,
)
from errand.kit import clock, inputs
from errand.kit.errors import InvalidRequest, NotFound, RateLimited
from errand.kit.ids import new_id
from errand.models import Policy

_cel_env = celpy.Environment(runner_class=celpy.CompiledRunner)
_programs: dict[str, Any] = {}

# A representative action, used to trial-evaluate CUSTOM rules when they are saved.
SAMPLE_REQUEST: dict[str, Any] = {
    "scenario": "restaurant",
    "operation": "book",
    "restaurantName": "Golden Gate Grill",
    "city": "San Francisco",
    "partySize": 4,
    "amountUsd": 260,
    "pricePerPersonUsd": 65,
    "datetime": "2027-03-20T19:00:00Z",
    "localTime": "12:00",
    "localHour": 12,
    "weekday": 5,
    "keyEnv": "live",
}


def _to_cel(value: dict[str, Any]) -> Any:
    """Numbers become doubles: CEL has no int/double overloads, and rules mix both."""

    def coerce(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, int | float):
            return float(v)
        if isinstance(v, dict):
            return {k: coerce(x) for k, x in v.items()}
        if isinstance(v, list):
            return [coerce(x) for x in v]
        return v

    return celpy.json_to_cel(coerce(value))


def _compile(rule: str) -> Any:
    program = _programs.get(rule)
    if program is None:
        program = _cel_env.program(_cel_env.compile(rule))
        _programs[rule] = program
    return program


def _evaluate_rule(rule: str, request: dict[str, Any]) -> bool:
    result = _compile(rule).evaluate({"request": _to_cel(request)})
    if isinstance(result, Exception):
        raise result
    if not isinstance(result, celpy.celtypes.BoolType):
        raise TypeError(f"the rule must evaluate to a boolean, not {type(result).__name__}")
    return bool(result)


def validate_config(policy_type: str, config: dict[str, Any]) -> dict[str, Any]:
    try:
        model = CONFIG_MODELS[policy_type].model_validate(config)
    except ValidationError as exc:
        issues = [{"field": i["path"], "message": i["message"]} for i in inputs.issues(exc, prefix=("config",))]
        summary = "; ".join(f"{i['field']}: {i['message']}" for i in issues)
        raise InvalidRequest(f"Invalid {policy_type} config: {summary}", details=issues) from None
    if isinstance(model, CustomConfig):
        try:
            _evaluate_rule(model.rule, SAMPLE_REQUEST)
        except Exception as exc:  # noqa: BLE001 - any failure of the rule is the user's to fix
            fields = ", ".join(sorted(SAMPLE_REQUEST))
            raise InvalidRequest(
                f"config.rule is not a valid CEL rule over request: {exc}. Fields: {fields}.",
                details=[{"field": "config.rule", "message": str(exc)}],
            ) from None
    return model.model_dump(exclude_none=True)


def _view(policy: Policy) -> PolicyView:
    return PolicyView.model_validate(policy, from_attributes=True)


async def create(session: AsyncSession, organization_id: str, data: PolicyCreate) -> PolicyView:
    policy = Policy(
        id=new_id("pol"),
        organization_id=organization_id,
        name=data.name,
        type=data.type,
        config=validate_config(data.type, data.config),
        enabled=data.enabled,
    )
    session.add(policy)
    await session.flush()
    return _view(policy)


async def _get(session: AsyncSession, organization_id: str, policy_id: str) -> Policy:
    policy = (
        await session.execute(
            select(Policy).where(Policy.id == policy_id, Policy.organization_id == organization_id)
        )
    ).scalar_one_or_none()
    if policy is None:
        raise NotFound("not_found", f"Policy {policy_id} not found.")
    return policy


async def list_all(session: AsyncSession, organization_id: str) -> list[PolicyView]:
    rows = await session.execute(
        select(Policy).where(Policy.organization_id == organization_id).order_by(Policy.created_at, Policy.id)
    )
    return [_view(p) for p in rows.scalars()]


async def update(session: AsyncSession, organization_id: str, policy_id: str, data: PolicyUpdate) -> PolicyView:
    policy = await _get(session, organization_id, policy_id)
    if data.name is not None:
        policy.name = data.name
    if data.config is not None:
        policy.config = validate_config(policy.type, data.config)
    if data.enabled is not None:
        policy.enabled = data.enabled
    policy.updated_at = clock.now()
    await session.flush()
    return _view(policy)


async def delete(session: AsyncSession, organization_id: str, policy_id: str) -> None:
    await session.delete(await _get(session, organization_id, policy_id))
    await session.flush()


def _judge(policy: Policy, ctx: ActionContext) -> tuple[str, str | None]:
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
            matched = _evaluate_rule(cfg["rule"], ctx.fields)
        except Exception as exc:  # noqa: BLE001 - fail closed, naming the policy
            return "deny", f"rule could not be evaluated for this request ({exc}); failing closed"
        if matched:
            return cfg.get("action", "deny"), cfg.get("message") or f"rule matched: {cfg['rule']}"
    return "allow", None


async def evaluate(session: AsyncSession, rate_limits: RateLimits, ctx: ActionContext) -> Decision:
    """The organization's verdict on an action. Raises RateLimited on a RATE_LIMIT breach."""
    policies = (
        await session.execute(
            select(Policy)
            .where(Policy.organization_id == ctx.organization_id, Policy.enabled.is_(True))
            .order_by(Policy.created_at, Policy.id)
        )
    ).scalars().all()
    decision = Decision()
    for policy in policies:
        if policy.type == "RATE_LIMIT":
            continue
        outcome, reason = _judge(policy, ctx)
        decision.evaluated.append({"policyId": policy.id, "type": policy.type, "outcome": outcome})
        rank = {"allow": 0, "requires_approval": 1, "deny": 2}
        if rank[outcome] > rank[decision.outcome]:
            decision.outcome, decision.policy_id, decision.policy_name = outcome, policy.id, policy.name
            decision.reason = reason
    if decision.outcome == "deny":
        return decision
    for policy in policies:
        if policy.type != "RATE_LIMIT":
            continue
        limit = policy.config["maxRequestsPerHour"]
        retry_after = await rate_limits.hit_policy_hourly(policy.id, limit)
        if retry_after is not None:
            raise RateLimited(
                "rate_limited",
                f"Policy '{policy.name}' ({policy.id}) allows {limit} requests per hour; retry in {retry_after}s.",
                retry_after=retry_after,
                details={"policyId": policy.id},
            )
    return decision
