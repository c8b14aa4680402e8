"""Each organization's enabled policies, read again only when they have changed.

Bookings and job steps judge every action against the organization's policies; most
organizations have none, and those that have rarely change them. :class:`PolicyCache` keeps
each organization's enabled policies as immutable :class:`Rule` values (no ORM objects), an
empty tuple included, with the organization's ``policies_version`` they were read at.

Every policy change (:mod:`errand.guard.policies`) bumps ``organizations.policies_version``
in its own transaction. Before each use the cache reads that one integer (a primary-key
lookup in a read-only transaction) and reads the policies again only when it has moved, so
the next action in *any* process is judged by the committed policies: a new spending limit
holds from the very next booking on every worker. A request that has just read the version
in a statement of its own (the idempotency claim returns it, :func:`saw_version`) is judged
by that reading instead of reading it again: the version committed when the request began. In the changing process the entry is also
dropped at once, and again when the change commits. Compiled CEL programs are cached
separately, by rule text, in :mod:`errand.guard.cel`.
"""

import weakref
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cachetools import LRUCache
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit.db import Database, now_and_after_commit
from errand.models import Organization, Policy

_live: "weakref.WeakSet[PolicyCache]" = weakref.WeakSet()
# The version the current request read in a statement of its own: (organization id, version), used once.
_seen: ContextVar[tuple[str, int] | None] = ContextVar("errand_policies_version_seen", default=None)


def saw_version(organization_id: str, version: int | None) -> None:
    """Record that the current request (its task) just read ``organization_id``'s committed
    ``policies_version`` (None: no such row, read as 0); the request's next :meth:`PolicyCache.rules`
    for that organization uses it instead of reading the version again."""
    _seen.set((organization_id, version or 0))


def _take_seen(organization_id: str) -> int | None:
    seen = _seen.get()
    if seen is None:
        return None
    _seen.set(None)
    return seen[1] if seen[0] == organization_id else None


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


async def forget(session: AsyncSession, organization_id: str) -> None:
    """Record in ``session``'s transaction that ``organization_id``'s policies changed (every
    process sees it before its next action), and drop them from this process's caches now and
    again when the transaction commits (a read racing the change cannot keep the old ones)."""
    await session.execute(update(Organization).where(Organization.id == organization_id)
                          .values(policies_version=Organization.policies_version + 1))

    def drop() -> None:
        for cache in list(_live):
            cache.drop(organization_id)

    now_and_after_commit(session, drop)


class PolicyCache:
    """This process's copy of the organizations' enabled policies in ``db``, each checked against
    the organization's ``policies_version`` before use; at most ``max_organizations`` kept."""

    def __init__(self, db: Database, *, max_organizations: int = 10_000) -> None:
        self.db = db
        self._cache: LRUCache[str, tuple[int, tuple[Rule, ...]]] = LRUCache(maxsize=max_organizations)
        self._generation = 0
        _live.add(self)

    async def rules(self, organization_id: str) -> tuple[Rule, ...]:
        """The organization's enabled policies, oldest first, as committed now. Raises Unavailable
        when the database cannot be reached."""
        hit = self._cache.get(organization_id)
        generation = self._generation
        version = _take_seen(organization_id)
        if version is None:
            row = await self.db.read_one(_VERSION, {"org": organization_id})
            version = row[0] if row is not None else 0
        if hit is not None and hit[0] == version:
            return hit[1]
        async with self.db.unit_of_work(read_only=True) as session:
            version = (await session.execute(_VERSION, {"org": organization_id})).scalar_one_or_none() or 0
            rows = (await session.execute(_RULES, {"org": organization_id})).all()
        rules = tuple(Rule(r.id, r.name, r.type, _frozen(r.config)) for r in rows)
        if generation == self._generation:
            self._cache[organization_id] = (version, rules)
        return rules

    def drop(self, organization_id: str) -> None:
        """Forget ``organization_id``'s policies: the next action reads them from the database."""
        self._generation += 1
        self._cache.pop(organization_id, None)


_VERSION = select(Organization.policies_version).where(Organization.id == bindparam("org"))
_RULES = (select(Policy.id, Policy.name, Policy.type, Policy.config)
          .where(Policy.organization_id == bindparam("org"), Policy.enabled.is_(True))
          .order_by(Policy.created_at, Policy.id))
