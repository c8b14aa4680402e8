"""Each organization's enabled policies, read once and kept for at most a second.

Bookings and job steps judge every action against the organization's policies; most
organizations have none, and those that have rarely change them. :class:`PolicyCache` keeps
each organization's enabled policies as immutable :class:`Rule` values (no ORM objects, no
session needed on a hit), an empty tuple included, so an organization without policies costs
no query.

A create, change or delete in this process (:mod:`errand.guard.policies`) drops the
organization's entry from every cache of the process at once, and again when its
transaction commits, so the next action is judged by the new policies. Another process's
change is seen within ``ERRAND_POLICY_CACHE_SECONDS`` (≤ 1 s), when the entry expires.
Compiled CEL programs are cached separately, by rule text, in :mod:`errand.guard.cel`.
"""

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cachetools import TTLCache
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit.db import Database
from errand.models import Policy

_live: "weakref.WeakSet[PolicyCache]" = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class Rule:
    """One enabled policy as evaluated: its id, name, type and validated config (read-only)."""

    id: str
    name: str
    type: str
    config: Mapping[str, Any]


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def forget(session: AsyncSession, organization_id: str) -> None:
    """Drop ``organization_id``'s policies from every cache of this process, now and again when
    ``session``'s transaction commits (a read racing the change cannot re-cache the old ones)."""

    def drop(*_args: object) -> None:
        for cache in list(_live):
            cache.drop(organization_id)

    drop()
    event.listen(session.sync_session, "after_commit", drop, once=True)


class PolicyCache:
    """This process's view of the organizations' enabled policies in ``db``.

    ``ttl_seconds`` (0..1; 0 reads the database every time) bounds how stale a view may be
    after another process changes a policy; ``max_organizations`` bounds its size.
    """

    def __init__(self, db: Database, *, ttl_seconds: float = 1.0, max_organizations: int = 10_000) -> None:
        if not 0 <= ttl_seconds <= 1:
            raise ValueError("ttl_seconds must be within 0..1")
        self.db = db
        self._cache: TTLCache[str, tuple[Rule, ...]] | None = (
            TTLCache(maxsize=max_organizations, ttl=ttl_seconds) if ttl_seconds > 0 else None)
        self._generation = 0
        _live.add(self)

    async def rules(self, organization_id: str) -> tuple[Rule, ...]:
        """The organization's enabled policies, oldest first. Raises Unavailable when they must be
        read and the database cannot be reached."""
        if self._cache is not None and (hit := self._cache.get(organization_id)) is not None:
            return hit
        generation = self._generation
        async with self.db.unit_of_work(read_only=True) as session:
            rows = (
                await session.execute(
                    select(Policy.id, Policy.name, Policy.type, Policy.config)
                    .where(Policy.organization_id == organization_id, Policy.enabled.is_(True))
                    .order_by(Policy.created_at, Policy.id)
                )
            ).all()
        rules = tuple(Rule(r.id, r.name, r.type, _frozen(r.config)) for r in rows)
        if self._cache is not None and generation == self._generation:
            self._cache[organization_id] = rules
        return rules

    def drop(self, organization_id: str) -> None:
        """Forget ``organization_id``'s policies: the next action reads them from the database."""
        self._generation += 1
        if self._cache is not None:
            self._cache.pop(organization_id, None)
