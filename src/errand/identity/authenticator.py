"""Checking API keys on the hot path: principals cached for at most a second, last use recorded in batches.

Only the SHA-256 of a key is stored. A malformed key is refused before the database is
touched; a well-formed one is looked up by its digest in a read-only unit of work, and
unknown, revoked and expired keys take the same path and give the same answer, so timing
tells nothing about which. Only a usable key is cached (by digest, with its expiry, which
every hit checks against the clock again; an expired entry is dropped and the key looked up
as if unknown).

Revocation (:func:`errand.identity.service.revoke_api_key`) is seen at once in the process
that revokes: it drops the key from every :class:`Authenticator` of that process, when it
flushes and again when its transaction commits. Another process (``errand revoke-api-key``
from the command line, another worker) reaches the database only, so there the cache's
time to live bounds it: ``ERRAND_AUTH_CACHE_SECONDS``, at most 1 s as the contract promises.
Nothing correctness needs lives only in this cache.

``api_keys.last_used_at`` is recorded off the request path: each use is remembered in
memory and written, one UPDATE per key in one short write transaction, at most every
``ERRAND_LAST_USED_FLUSH_SECONDS`` (5 s by default) and when the process closes its core; it
only ever moves forward, so several processes may record the same key. A failed write is
logged and retried at the next flush; a process killed outright loses at most that interval
of last-use times, which are informative and guard nothing.
"""

import asyncio
import re
import weakref
from dataclasses import dataclass
from datetime import datetime

from cachetools import TTLCache
from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.identity.errors import InvalidApiKey, MalformedApiKey
from errand.identity.schemas import Principal
from errand.kit import clock, crypto
from errand.kit.db import Database, now_and_after_commit
from errand.kit.logging import get_logger
from errand.models import ApiKey, Organization

KEY_PATTERN = re.compile(r"^(ogk|ar)_(live|test)_[A-Za-z0-9_-]{16,}$")
_DUMMY_HASH = crypto.sha256_hex("errand-no-such-key")
_log = get_logger("errand.identity")

# Every authenticator of this process, so a revocation here reaches all of them.
_live: "weakref.WeakSet[Authenticator]" = weakref.WeakSet()

_keys = ApiKey.__table__
_record_use = (
    update(_keys)
    .where(_keys.c.id == bindparam("key_id"),
           or_(_keys.c.last_used_at.is_(None), _keys.c.last_used_at < bindparam("used_at", type_=_keys.c.last_used_at.type)))
    .values(last_used_at=bindparam("used_at", type_=_keys.c.last_used_at.type))
)


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    expires_at: datetime | None


def forget(session: AsyncSession, key_hash: str) -> None:
    """Drop the key of ``key_hash`` from every authenticator of this process, now and again when
    ``session``'s transaction commits (a lookup racing the revocation cannot re-cache it)."""

    def drop() -> None:
        for authenticator in list(_live):
            authenticator.drop(key_hash)

    now_and_after_commit(session, drop)


async def lookup(db: Database, digest: str, now: datetime) -> _Entry:
    """The usable key of ``digest`` read from the database: its principal and expiry.

    Raises Unauthorized ``invalid_api_key`` for an unknown, revoked or expired key alike (the
    digest is compared in constant time against the stored one, or a dummy when none), and
    Unavailable when the database cannot be reached."""
    async with db.unit_of_work(read_only=True) as session:
        row = (
            await session.execute(
                select(ApiKey.id, ApiKey.key_hash, ApiKey.organization_id,
                       Organization.name.label("organization_name"), ApiKey.prefix, ApiKey.env, ApiKey.role,
                       ApiKey.scenarios, ApiKey.rate_limit_per_day, ApiKey.expires_at, ApiKey.revoked_at)
                .join(Organization, Organization.id == ApiKey.organization_id)
                .where(ApiKey.key_hash == digest)
            )
        ).first()
    matches = crypto.constant_time_equal(row.key_hash if row else _DUMMY_HASH, digest)
    expires_at = clock.as_utc(row.expires_at) if row and row.expires_at else None
    if not matches or row is None or row.revoked_at is not None or (expires_at is not None and expires_at <= now):
        raise InvalidApiKey("The API key is not valid.")
    principal = Principal(
        organization_id=row.organization_id, organization_name=row.organization_name, api_key_id=row.id,
        key_prefix=row.prefix, env=row.env, role=row.role, scenarios=tuple(row.scenarios),
        rate_limit_per_day=row.rate_limit_per_day,
    )
    return _Entry(principal, expires_at)


class Authenticator:
    """This process's check of API keys against ``db``, created once by the composition root.

    ``cache_seconds`` (0..1; 0 turns the cache off) is how long a usable key is trusted
    without asking the database; ``flush_seconds`` how often last-use times are written;
    ``max_keys`` bounds the cache (least recently used keys leave first). Holds no customer
    data: a principal is an organization, a key id and the key's scope.
    """

    def __init__(self, db: Database, *, cache_seconds: float = 1.0, flush_seconds: float = 5.0,
                 max_keys: int = 10_000) -> None:
        if not 0 <= cache_seconds <= 1:
            raise ValueError("cache_seconds must be within 0..1: the contract stops a revoked key within 1 s")
        self.db = db
        self._cache: TTLCache[str, _Entry] | None = (
            TTLCache(maxsize=max_keys, ttl=cache_seconds) if cache_seconds > 0 else None)
        # Bumped by every drop: a lookup that overlapped a revocation does not cache what it read.
        self._generation = 0
        # One database lookup per key at a time: when an entry expires under load, the requests
        # that miss it together wait for the same lookup instead of each running one.
        self._lookups: dict[str, asyncio.Task[_Entry]] = {}
        self._flush_seconds = flush_seconds
        self._used: dict[str, datetime] = {}
        self._flusher: asyncio.Task[None] | None = None
        _live.add(self)

    async def authenticate(self, raw_key: str) -> Principal:
        """The principal of ``raw_key``. Raises Unauthorized (``malformed_api_key`` before any
        lookup; ``invalid_api_key`` for unknown, revoked and expired keys alike), or Unavailable
        when the database is needed and cannot be reached."""
        if not KEY_PATTERN.fullmatch(raw_key):
            raise MalformedApiKey("The API key is malformed.")
        digest = crypto.sha256_hex(raw_key)
        now = clock.now()
        entry = self._cache.get(digest) if self._cache is not None else None
        if entry is None or (entry.expires_at is not None and entry.expires_at <= now):
            if entry is not None:
                self.drop(digest)
            entry = await self._shared_lookup(digest, now)
        self._note_use(entry.principal.api_key_id, now)
        return entry.principal

    async def _shared_lookup(self, digest: str, now: datetime) -> _Entry:
        loop = asyncio.get_running_loop()
        task = self._lookups.get(digest)
        if task is None or task.get_loop() is not loop:
            task = loop.create_task(self._lookup_and_cache(digest, now))
            self._lookups[digest] = task
            task.add_done_callback(lambda done: self._finished(digest, done))
        # Shielded: a caller that goes away does not cancel the lookup the others wait for.
        return await asyncio.shield(task)

    def _finished(self, digest: str, task: "asyncio.Task[_Entry]") -> None:
        if self._lookups.get(digest) is task:
            del self._lookups[digest]
        if not task.cancelled():
            task.exception()  # retrieved, so a refusal nobody waited for is not logged as lost

    async def _lookup_and_cache(self, digest: str, now: datetime) -> _Entry:
        generation = self._generation
        entry = await lookup(self.db, digest, now)
        if self._cache is not None and generation == self._generation:
            self._cache[digest] = entry
        return entry

    def drop(self, key_hash: str) -> None:
        """Forget the key of ``key_hash``: its next use is looked up in the database anew (not
        joined to a lookup that started before)."""
        self._generation += 1
        self._lookups.pop(key_hash, None)
        if self._cache is not None:
            self._cache.pop(key_hash, None)

    def _note_use(self, api_key_id: str, at: datetime) -> None:
        self._used[api_key_id] = at
        loop = asyncio.get_running_loop()
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush_periodically(), name="errand-last-used")

    async def _flush_periodically(self) -> None:
        # Ends once a period passes without use; the next use starts it again.
        while self._used:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    async def flush(self) -> None:
        """Write the remembered last-use times, one UPDATE per key in one transaction.

        Never raises for a database failure: it is logged and the times are kept for the next
        flush (a later use of the same key wins)."""
        if not self._used:
            return
        batch, self._used = self._used, {}
        try:
            async with self.db.unit_of_work() as session:
                await session.execute(_record_use, [{"key_id": k, "used_at": at} for k, at in sorted(batch.items())])
        except BaseException as exc:
            for key_id, at in batch.items():
                self._used[key_id] = max(at, self._used.get(key_id, at))
            if not isinstance(exc, Exception):
                raise
            _log.warning("last_used_flush_failed", keys=len(batch), error=type(exc).__name__)

    async def aclose(self) -> None:
        """Stop the periodic flush and write what is left; call once when the process stops serving."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done() and flusher.get_loop() is asyncio.get_running_loop():
            flusher.cancel()
            try:
                await flusher
            except asyncio.CancelledError:
                pass
        await self.flush()
