"""The provider chain for a job: who may serve it, in the order most likely to succeed."""

from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import clock
from errand.models import ProviderOutcome
from errand.providers.registry import ProviderRegistry

# Below this many recent attempts a success rate is noise, and registry order stands.
MIN_EVIDENCE = 5


async def plan(session: AsyncSession, providers: ProviderRegistry, *, organization_id: str, scenario: str, key_env: str,
               consent: dict[str, Any]) -> list[Any]:
    """The providers of the ``providers`` registry that may serve the job, most successful first.

    Those the key's mode reaches for ``scenario``, that can search, within ``consent``'s allowed
    and blocked lists; ordered by the organization's accepted share of the last 30 days where
    there are :data:`MIN_EVIDENCE` attempts, else in registry order."""
    allowed = consent.get("allowedProviders")
    blocked = set(consent.get("blockedProviders") or [])
    chain = [
        p for p in providers.for_scenario(scenario, key_env=key_env)
        if hasattr(p, "search") and p.id not in blocked and (allowed is None or p.id in allowed)
    ]
    if len(chain) < 2:
        return chain
    since = clock.now() - timedelta(days=30)
    rows = (await session.execute(
        select(ProviderOutcome.provider_id, func.count(),
               func.sum(case((ProviderOutcome.outcome == "accepted", 1), else_=0)))
        .where(ProviderOutcome.organization_id == organization_id, ProviderOutcome.created_at >= since,
               ProviderOutcome.provider_id.in_([p.id for p in chain]))
        .group_by(ProviderOutcome.provider_id)
    )).all()
    rates = {pid: (accepted or 0) / total for pid, total, accepted in rows if total >= MIN_EVIDENCE}
    order = {p.id: i for i, p in enumerate(chain)}
    return sorted(chain, key=lambda p: (-rates.get(p.id, 1.0), order[p.id]))


async def usable(chain: list[Any]) -> tuple[list[Any], list[Any]]:
    """Split a chain into the providers usable now and those lacking what they run on.

    A provider may answer ``async available() -> bool`` (a browser provider: is there a
    browser?); one that has no such method is always usable.
    """
    ready, missing = [], []
    for provider in chain:
        check = getattr(provider, "available", None)
        (ready if check is None or await check() else missing).append(provider)
    return ready, missing
