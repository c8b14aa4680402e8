"""At-most-once execution of changing requests, the way Stripe does it.

A key is scoped to (organization, mode, operation): a test key and a live key of one
organization sending the same key make two records, as in Stripe. The first request
claims it with one ``INSERT … ON CONFLICT DO UPDATE … WHERE <claimable>`` in a short
transaction of its own; the operation then runs and stores its result through the
:class:`Claim` it is given, in the same transaction as the change it made, so the change and
the replayable answer commit together or not at all. A deterministic error is stored (and
replayed) the same way, in a transaction of its own. A retry while the first is still
running waits a few seconds for it and replays, or gets 409. Errors that say "try again"
(rate limits, unavailable backends, bugs) release the claim instead of being cached.

The operation receives a *downstream key* derived from the client's key and the request
digest. Providers honour it, so when the outcome was unknown (a timeout, or a crash
between the provider's answer and our commit) a retry finds the first booking instead of
making a second one. A claim whose holder died is taken over once it is older than
``idempotency_stale_seconds``.

The stored result carries what the operation returned, customer details included, so the
record's ``result`` column seals it (Fernet, :class:`~errand.kit.crypto.SealedJSON`) on
store and opens it on replay; a result an older Errand stored in clear still replays until
it expires.

A completed record never changes until it expires, so once a process has read one it keeps
it in memory (``_completed``: at most 10,000 keys, each for at most ``REPLAY_CACHE_SECONDS``
and never past the record's ``expires_at``) with the result still sealed, and answers later
replays of the key, or refuses another body under it, without the database. The database
stays the only truth: the cache is filled from committed reads only, and losing it loses
nothing.
"""

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cachetools import TTLCache
from sqlalchemy import JSON, and_, bindparam, case, delete, or_, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from errand.guard import policy_cache
from errand.kit import clock, crypto, metrics, timing
from errand.kit.config import Settings
from errand.kit.core import Core
from errand.kit.db import Database
from errand.kit.errors import DomainError, IdempotencyConflict, InvalidRequest
from errand.kit.ids import new_id
from errand.models import IdempotencyRecord, Organization

_CACHEABLE_KINDS = {"invalid", "not_found", "conflict", "forbidden"}
_POLL_SECONDS = 0.05
_KEY_COLUMNS = ("organization_id", "env", "scope", "key")

# --- statements of the hot path, built once (executed with Core on the session's connection) ---

_T = IdempotencyRecord.__table__
_C = _T.c
# The key (and, for a claim's own writes, its lock token) as bound parameters.
_KEY_WHERE = (_C.organization_id == bindparam("w_org"), _C.env == bindparam("w_env"),
              _C.scope == bindparam("w_scope"), _C.key == bindparam("w_key"))
_MINE_WHERE = (*_KEY_WHERE, _C.lock_token == bindparam("w_token"))
# The result as stored (the sealed JSON string), not opened: what the replay cache keeps.
_SEEN = select(_C.request_hash, _C.state, type_coerce(_C.result, JSON).label("result"), _C.locked_at,
               _C.expires_at).where(*_KEY_WHERE)
# The result bind keeps the column's type (SealedJSON), so Core seals it on the way in.
_COMPLETE = update(_T).where(*_MINE_WHERE).values(state="completed", result=bindparam("result"),
                                                  updated_at=bindparam("now"))
_SETTLE_STORE = update(_T).where(*_MINE_WHERE, _C.state == "in_progress").values(
    state="completed", result=bindparam("result"), updated_at=bindparam("now"))
_SETTLE_RELEASE = delete(_T).where(*_MINE_WHERE, _C.state == "in_progress")
_CLAIMS: dict[str, Executable] = {}
_POLICIES_VERSION = (select(Organization.policies_version).where(Organization.id == bindparam("w_org"))
                     .scalar_subquery())


def _claim_statement(dialect: str) -> Executable:
    """The claim upsert for ``dialect`` (``postgresql`` or ``sqlite``), built on first use.

    Binds: the new row's columns (``id``, ``organization_id``, ``env``, ``scope``, ``key``,
    ``request_hash``, ``lock_token``, ``locked_at``, ``expires_at``, ``created_at``,
    ``updated_at``), ``now`` (expiry is judged against it), ``stale_before`` and ``w_org`` (the
    organization whose ``policies_version`` it returns beside the claim, so that the policy
    check that follows needs no read of its own)."""
    stmt = _CLAIMS.get(dialect)
    if stmt is not None:
        return stmt
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = ("id", "organization_id", "env", "scope", "key", "request_hash", "lock_token", "locked_at",
               "expires_at", "created_at", "updated_at")
    upsert = insert(_T).values({name: bindparam(name) for name in columns} | {"state": "in_progress",
                                                                             "result": None, "generation": 0})
    new = upsert.excluded
    expired = _C.expires_at <= bindparam("now", type_=_C.expires_at.type)
    stale = and_(_C.state == "in_progress", _C.locked_at <= bindparam("stale_before", type_=_C.locked_at.type),
                 _C.request_hash == new.request_hash)
    afresh = {name: case((expired, new[name]), else_=_C[name])
              for name in ("request_hash", "state", "result", "expires_at", "created_at")}
    stmt = upsert.on_conflict_do_update(
        index_elements=[_C[name] for name in _KEY_COLUMNS],
        set_={**afresh, "generation": case((expired, _C.generation + 1), else_=_C.generation),
              "lock_token": new.lock_token, "locked_at": new.locked_at, "updated_at": new.updated_at},
        where=or_(expired, stale),
    ).returning(_C.lock_token, _C.generation, _POLICIES_VERSION)
    _CLAIMS[dialect] = stmt
    return stmt


def _key_params(organization_id: str, env: str, scope: str, key: str | None, token: str | None = None
                ) -> dict[str, Any]:
    params = {"w_org": organization_id, "w_env": env, "w_scope": scope, "w_key": key}
    if token is not None:
        params["w_token"] = token
    return params


# --- completed answers kept in memory ----------------------------------------------------

# How long this process trusts a completed answer it read, at most (and never past the record's expiry).
REPLAY_CACHE_SECONDS = 600


@dataclass(frozen=True)
class _Completed:
    """A completed record as stored: its request digest, its result sealed (the column's Fernet
    ciphertext, never the answer in clear) and its expiry (UTC)."""

    digest: str
    sealed: str
    expires_at: datetime


# (organization_id, env, scope, key) -> _Completed. A completed record does not change until it
# expires (only then may a claim start it afresh), so an entry is the database's answer until
# ``expires_at``; it is dropped after REPLAY_CACHE_SECONDS in any case. Filled from reads only:
# the database stays the truth, and a process that died loses nothing but the shortcut.
_completed: TTLCache[tuple[str, str, str, str], _Completed] = TTLCache(maxsize=10_000,
                                                                        ttl=REPLAY_CACHE_SECONDS)
# How many requests of this process are working on each key right now (a hint, see run_idempotent).
_working: Counter[tuple[str, str, str, str]] = Counter()


def _open(stored: Any) -> dict[str, Any] | None:
    """The result column's value opened: sealed (a JSON string) or stored in clear by an older Errand."""
    if isinstance(stored, str):
        return json.loads(crypto.unseal(stored.encode()))
    return stored


# The replays answered while :func:`noting_replays` watches (see there).
_noted: ContextVar[list["Replayed"] | None] = ContextVar("errand_noted_replays", default=None)


@dataclass(frozen=True)
class Replayed:
    """A completed key this process answered from its replay cache: which key, and which request body."""

    cache_key: tuple[str, str, str, str]
    digest: str


@contextmanager
def noting_replays() -> Iterator[list[Replayed]]:
    """Collect, in the yielded list, each cached completed key that the block replays.

    What an HTTP layer needs to answer the same request again without re-running the route
    (:mod:`errand.api.replays`): it keeps the rendered answer only while :func:`still_completed`
    says the key's record is still the one replayed."""
    noted: list[Replayed] = []
    token = _noted.set(noted)
    try:
        yield noted
    finally:
        _noted.reset(token)


def still_completed(replayed: Replayed) -> bool:
    """Whether the replay cache still holds ``replayed``'s key as completed with that request body
    (not expired, not evicted): its answer is then the same as when it was noted."""
    entry = _completed.get(replayed.cache_key)
    return entry is not None and entry.digest == replayed.digest and entry.expires_at > clock.now()


def _note(cache_key: tuple[str, str, str, str], digest: str) -> None:
    noted = _noted.get()
    if noted is not None and cache_key in _completed:
        noted.append(Replayed(cache_key, digest))


def _recall(cache_key: tuple[str, str, str, str], digest: str) -> _Completed | None:
    """The cached completed record for the key, if still valid; Conflict when it was made by
    another request body."""
    entry = _completed.get(cache_key)
    if entry is None:
        return None
    if entry.expires_at <= clock.now():
        _completed.pop(cache_key, None)
        return None
    if entry.digest != digest:
        raise IdempotencyConflict("This Idempotency-Key was already used with a different request body.",
        )
    return entry


@dataclass
class IdempotentResult:
    value: dict[str, Any]
    replayed: bool


@dataclass
class Claim:
    """The key a request owns while its operation runs.

    ``downstream_key`` is what the operation hands to providers. The operation stores its
    answer with :meth:`complete` inside the unit of work that persists its change, so the two
    commit together; a request without an Idempotency-Key gets a claim whose ``complete``
    stores nothing.
    """

    downstream_key: str
    organization_id: str = ""
    env: str = ""
    scope: str = ""
    key: str | None = None
    token: str = ""
    completed: bool = field(default=False, init=False)

    def _mine(self) -> dict[str, Any]:
        return _key_params(self.organization_id, self.env, self.scope, self.key, self.token)

    async def complete(self, session: AsyncSession, value: dict[str, Any]) -> None:
        """Store ``value`` (the JSON answer) as the key's replay, in ``session``'s transaction.

        Raises Conflict ``idempotency_conflict`` when the claim is no longer this request's
        (a retry took it over as stale, or it expired and was claimed again): the caller's
        transaction then rolls back, so the change is recorded once, by the holder."""
        if self.key is None:
            return
        conn = await session.connection()
        stored = await conn.execute(_COMPLETE, {**self._mine(), "result": {"ok": value}, "now": clock.now()})
        if stored.rowcount != 1:
            raise IdempotencyConflict("A retry with this Idempotency-Key took over this request; retry to read its result.")
        self.completed = True

    async def _settle(self, db: Database, result: dict[str, Any] | None) -> None:
        """Store a deterministic error (or release the claim when ``result`` is None) in a transaction
        of its own. A claim already completed is never touched."""
        async with db.unit_of_work() as session:
            conn = await session.connection()
            if result is None:
                await conn.execute(_SETTLE_RELEASE, self._mine())
            else:
                await conn.execute(_SETTLE_STORE, {**self._mine(), "result": result, "now": clock.now()})


def request_digest(request: dict[str, Any]) -> str:
    return crypto.sha256_hex(crypto.canonical_json(request))


def _replay(result: dict[str, Any] | None, cache_key: tuple[str, str, str, str], digest: str) -> IdempotentResult:
    _note(cache_key, digest)
    metrics.idempotency_replayed()
    result = result or {}
    if "error" in result:
        error = DomainError.from_dict(result["error"])
        error.replayed = True
        raise error
    return IdempotentResult(value=result["ok"], replayed=True)


@dataclass
class _Seen:
    """What another request left under the key."""

    state: str
    result: dict[str, Any] | None
    locked_at: datetime


def _judge(row: Any, digest: str, now: datetime, cache_key: tuple[str, str, str, str]) -> _Seen | None:
    """The record another request holds, or None when there is none (or it has expired).
    A completed, sealed record is remembered in the replay cache until it expires."""
    if row is None:
        return None
    request_hash, state, stored, locked_at, expires_at = row
    expires_at = clock.as_utc(expires_at)
    if expires_at <= now:
        return None
    if request_hash != digest:
        raise IdempotencyConflict("This Idempotency-Key was already used with a different request body.",
        )
    if state == "completed" and isinstance(stored, str):
        _completed[cache_key] = _Completed(digest=request_hash, sealed=stored, expires_at=expires_at)
    return _Seen(state, _open(stored), clock.as_utc(locked_at))


async def _look(db: Database, cache_key: tuple[str, str, str, str], digest: str) -> _Seen | None:
    """Read the key without a write lock: a completed key replays from here."""
    async with db.unit_of_work(read_only=True) as session:
        conn = await session.connection()
        row = (await conn.execute(_SEEN, _key_params(*cache_key))).first()
    return _judge(row, digest, clock.now(), cache_key)


async def _claim(
    db: Database, settings: Settings, cache_key: tuple[str, str, str, str], digest: str
) -> tuple[tuple[str, int] | None, _Seen | None]:
    """Try once to own the key: ((token, generation), None) when claimed, (None, record) when someone
    else has it, (None, None) when the holder let it go meanwhile (look again).

    One statement claims: a new key is inserted; an existing one is taken only when it has
    expired (any body: the record is started afresh) or when it is a claim of the same request
    whose holder has not been heard of for ``idempotency_stale_seconds`` (a takeover: only the
    lock moves). Otherwise the record is read in the same transaction. A claim also reads the
    organization's committed policies version (:func:`errand.guard.policy_cache.saw_version`)."""
    now = clock.now()
    token = secrets.token_hex(16)
    organization_id, env, scope, key = cache_key
    params = {
        "id": new_id("idem"), "organization_id": organization_id, "env": env, "scope": scope, "key": key,
        "request_hash": digest, "lock_token": token, "locked_at": now,
        "expires_at": now + timedelta(hours=settings.idempotency_ttl_hours), "created_at": now, "updated_at": now,
        "now": now, "stale_before": now - timedelta(seconds=settings.idempotency_stale_seconds),
        "w_org": organization_id,
    }
    async with db.unit_of_work() as session:
        conn = await session.connection()
        claimed = (await conn.execute(_claim_statement(db.engine.dialect.name), params)).first()
        if claimed is not None and claimed[0] == token:
            policy_cache.saw_version(organization_id, claimed[2])
            return (token, claimed[1]), None
        row = (await conn.execute(_SEEN, _key_params(*cache_key))).first()
    return None, _judge(row, digest, now, cache_key)


async def run_idempotent(
    core: Core,
    *,
    organization_id: str,
    env: str,
    scope: str,
    key: str | None,
    request: dict[str, Any],
    operation: Callable[[Claim], Awaitable[dict[str, Any]]],
) -> IdempotentResult:
    """Run ``operation(claim)`` at most once per (organization, mode, scope, key).

    ``env`` is the caller's mode (``live`` | ``test``); the downstream key differs per mode too,
    so a provider never mistakes a test request for the live one with the same key. The
    operation should call ``claim.complete(session, value)`` in the unit of work that records
    its change; when it returns without doing so, its value is stored in a transaction of its own.

    An orchestrator (``docs/core.md``): it opens its own short units of work on ``core.db``
    around the operation, under ``core.settings``' idempotency TTL and waits.

    Raises InvalidRequest for a malformed key, Conflict ``idempotency_conflict`` for a key used
    with another body or still being processed after ``idempotency_wait_seconds``, the replayed
    error of a completed key, and whatever the operation raises."""
    if key is None:
        return IdempotentResult(value=await operation(Claim(downstream_key=new_id("req"))), replayed=False)
    if not key.strip() or len(key) > 255:
        raise InvalidRequest("The Idempotency-Key header must be 1 to 255 characters.")
    digest = request_digest(request)
    cache_key = (organization_id, env, scope, key)
    with timing.phase("idempotency"):
        cached = _recall(cache_key, digest)
        result = None if cached is None else _open(cached.sealed)
    if result is not None:
        return _replay(result, cache_key, digest)
    # A key another request of this process is working on is read before it is claimed, so a
    # burst of retries reads in parallel rather than queueing for the write lock.
    busy_here = cache_key in _working
    _working[cache_key] += 1
    try:
        owned = await _own(core.db, core.settings, cache_key, digest, look_first=busy_here)
        if isinstance(owned, IdempotentResult):
            return owned
        token, generation = owned
        return await _run(core.db, Claim(downstream_key=_downstream_key(cache_key, digest, generation),
                                         organization_id=organization_id, env=env, scope=scope, key=key,
                                         token=token),
                          operation)
    finally:
        _working[cache_key] -= 1
        if not _working[cache_key]:
            del _working[cache_key]


def _downstream_key(cache_key: tuple[str, str, str, str], digest: str, generation: int) -> str:
    """The key providers see for this request: the same for every retry of one request (a stale
    takeover included), so a provider replays what it did; another after the key expired and was
    claimed again (``generation`` ≥ 1), so that later request books afresh instead of being handed
    the first one's booking. Live keys of generation 0 derive as they did before modes existed, so
    a retry across an upgrade still matches."""
    organization_id, env, scope, key = cache_key
    mode = "" if env == "live" else f"{env}:"
    again = f":{generation}" if generation else ""
    return crypto.sha256_hex(f"{mode}{organization_id}:{scope}:{key}:{digest}{again}")[:48]


async def _own(db: Database, settings: Settings, cache_key: tuple[str, str, str, str], digest: str, *,
               look_first: bool) -> tuple[str, int] | IdempotentResult:
    """The claim's (token, generation) once this request owns the key, or the completed key's replay.

    Without ``look_first`` the first try claims at once: a new key costs one transaction, and a
    key someone else holds is read in that same transaction. A wait polls without the write
    lock, and claims again only when the holder let go or went stale. Raises as run_idempotent."""
    deadline = asyncio.get_running_loop().time() + settings.idempotency_wait_seconds
    stale_after = timedelta(seconds=settings.idempotency_stale_seconds)
    while True:
        with timing.phase("idempotency"):
            seen = await _look(db, cache_key, digest) if look_first else None
            look_first = True
            owned = None
            if seen is None or (seen.state == "in_progress" and seen.locked_at <= clock.now() - stale_after):
                owned, seen = await _claim(db, settings, cache_key, digest)
        if owned is not None:
            return owned
        if seen is not None and seen.state == "completed":
            return _replay(seen.result, cache_key, digest)
        if asyncio.get_running_loop().time() >= deadline:
            raise IdempotencyConflict("A request with this Idempotency-Key is still being processed; retry shortly.",
            )
        await asyncio.sleep(_POLL_SECONDS)


async def _run(db: Database, claim: Claim, operation: Callable[[Claim], Awaitable[dict[str, Any]]]
               ) -> IdempotentResult:
    """Run the operation under ``claim``; store its answer (or a deterministic error) unless it did."""
    try:
        value = await operation(claim)
    except DomainError as exc:
        await claim._settle(db, {"error": exc.to_dict()} if exc.kind in _CACHEABLE_KINDS else None)
        raise
    except BaseException:
        await claim._settle(db, None)
        raise
    if not claim.completed:
        await claim._settle(db, {"ok": value})
    return IdempotentResult(value=value, replayed=False)
