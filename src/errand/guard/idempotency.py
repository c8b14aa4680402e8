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
"""

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from errand.kit import clock, crypto, timing
from errand.kit.config import Settings
from errand.kit.db import Database
from errand.kit.errors import Conflict, DomainError, InvalidRequest
from errand.kit.ids import new_id
from errand.models import IdempotencyRecord

_CACHEABLE_KINDS = {"invalid", "not_found", "conflict", "forbidden"}
_POLL_SECONDS = 0.05
_KEY_COLUMNS = ("organization_id", "env", "scope", "key")


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

    def _mine(self) -> tuple[Any, ...]:
        return (
            IdempotencyRecord.organization_id == self.organization_id, IdempotencyRecord.env == self.env,
            IdempotencyRecord.scope == self.scope, IdempotencyRecord.key == self.key,
            IdempotencyRecord.lock_token == self.token,
        )

    async def complete(self, session: AsyncSession, value: dict[str, Any]) -> None:
        """Store ``value`` (the JSON answer) as the key's replay, in ``session``'s transaction.

        Raises Conflict ``idempotency_conflict`` when the claim is no longer this request's
        (a retry took it over as stale, or it expired and was claimed again): the caller's
        transaction then rolls back, so the change is recorded once, by the holder."""
        if self.key is None:
            return
        stored = await session.execute(
            update(IdempotencyRecord.__table__).where(*self._mine())
            .values(state="completed", result={"ok": value}, updated_at=clock.now())
        )
        if stored.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("idempotency_conflict",
                           "A retry with this Idempotency-Key took over this request; retry to read its result.")
        self.completed = True

    async def _settle(self, db: Database, result: dict[str, Any] | None) -> None:
        """Store a deterministic error (or release the claim when ``result`` is None) in a transaction
        of its own. A claim already completed is never touched."""
        async with db.unit_of_work() as session:
            where = (*self._mine(), IdempotencyRecord.state == "in_progress")
            if result is None:
                await session.execute(delete(IdempotencyRecord).where(*where))
            else:
                await session.execute(
                    update(IdempotencyRecord).where(*where)
                    .values(state="completed", result=result, updated_at=clock.now())
                )


def request_digest(request: dict[str, Any]) -> str:
    return crypto.sha256_hex(crypto.canonical_json(request))


def _replay(result: dict[str, Any] | None) -> IdempotentResult:
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


_SEEN_COLUMNS = (IdempotencyRecord.request_hash, IdempotencyRecord.state, IdempotencyRecord.result,
                 IdempotencyRecord.locked_at, IdempotencyRecord.expires_at)


def _where_key(organization_id: str, env: str, scope: str, key: str) -> tuple[Any, ...]:
    return (IdempotencyRecord.organization_id == organization_id, IdempotencyRecord.env == env,
            IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)


def _judge(row: Any, digest: str, now: datetime) -> _Seen | None:
    """The record another request holds, or None when there is none (or it has expired)."""
    if row is None or clock.as_utc(row.expires_at) <= now:
        return None
    if row.request_hash != digest:
        raise Conflict(
            "idempotency_conflict",
            "This Idempotency-Key was already used with a different request body.",
        )
    return _Seen(row.state, row.result, clock.as_utc(row.locked_at))


async def _look(db: Database, organization_id: str, env: str, scope: str, key: str, digest: str) -> _Seen | None:
    """Read the key without a write lock: a completed key replays from here."""
    async with db.unit_of_work(read_only=True) as session:
        row = (await session.execute(
            select(*_SEEN_COLUMNS).where(*_where_key(organization_id, env, scope, key))
        )).one_or_none()
    return _judge(row, digest, clock.now())


async def _claim(
    db: Database, settings: Settings, organization_id: str, env: str, scope: str, key: str, digest: str
) -> tuple[str | None, _Seen | None]:
    """Try once to own the key: (token, None) when claimed, (None, record) when someone else has it,
    (None, None) when the holder let it go meanwhile (look again).

    One statement claims: a new key is inserted; an existing one is taken only when it has
    expired (any body: the record is started afresh) or when it is a claim of the same request
    whose holder has not been heard of for ``idempotency_stale_seconds`` (a takeover: only the
    lock moves). Otherwise the record is read in the same transaction."""
    now = clock.now()
    token = secrets.token_hex(16)
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(IdempotencyRecord).values(
        id=new_id("idem"), organization_id=organization_id, env=env, scope=scope, key=key,
        request_hash=digest, state="in_progress", lock_token=token, locked_at=now, result=None,
        expires_at=now + timedelta(hours=settings.idempotency_ttl_hours), created_at=now, updated_at=now,
    )
    new = stmt.excluded
    expired = IdempotencyRecord.expires_at <= now
    stale = and_(IdempotencyRecord.state == "in_progress",
                 IdempotencyRecord.locked_at <= now - timedelta(seconds=settings.idempotency_stale_seconds),
                 IdempotencyRecord.request_hash == digest)
    afresh = {name: case((expired, new[name]), else_=IdempotencyRecord.__table__.c[name])
              for name in ("request_hash", "state", "result", "expires_at", "created_at")}
    stmt = stmt.on_conflict_do_update(
        index_elements=[IdempotencyRecord.__table__.c[name] for name in _KEY_COLUMNS],
        set_={**afresh, "lock_token": new.lock_token, "locked_at": new.locked_at, "updated_at": new.updated_at},
        where=or_(expired, stale),
    ).returning(IdempotencyRecord.lock_token)
    async with db.unit_of_work() as session:
        if (await session.execute(stmt)).scalar_one_or_none() == token:
            return token, None
        row = (await session.execute(
            select(*_SEEN_COLUMNS).where(*_where_key(organization_id, env, scope, key))
        )).one_or_none()
    return None, _judge(row, digest, now)


async def run_idempotent(
    db: Database,
    settings: Settings,
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

    Raises InvalidRequest for a malformed key, Conflict ``idempotency_conflict`` for a key used
    with another body or still being processed after ``idempotency_wait_seconds``, the replayed
    error of a completed key, and whatever the operation raises."""
    if key is None:
        return IdempotentResult(value=await operation(Claim(downstream_key=new_id("req"))), replayed=False)
    if not key.strip() or len(key) > 255:
        raise InvalidRequest("The Idempotency-Key header must be 1 to 255 characters.")
    digest = request_digest(request)
    # Live keys derive as they did before modes existed, so a retry across the upgrade still matches.
    mode = "" if env == "live" else f"{env}:"
    downstream_key = crypto.sha256_hex(f"{mode}{organization_id}:{scope}:{key}:{digest}")[:48]
    deadline = asyncio.get_running_loop().time() + settings.idempotency_wait_seconds
    stale_after = timedelta(seconds=settings.idempotency_stale_seconds)
    while True:
        with timing.phase("idempotency"):
            # Read first, without the write lock: a replay or a wait costs one read-only transaction,
            # a new key one more (the claim).
            seen = await _look(db, organization_id, env, scope, key, digest)
            token = None
            if seen is None or (seen.state == "in_progress" and seen.locked_at <= clock.now() - stale_after):
                token, seen = await _claim(db, settings, organization_id, env, scope, key, digest)
        if token is not None:
            break
        if seen is not None and seen.state == "completed":
            return _replay(seen.result)
        if asyncio.get_running_loop().time() >= deadline:
            raise Conflict(
                "idempotency_conflict",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
            )
        await asyncio.sleep(_POLL_SECONDS)
    claim = Claim(downstream_key=downstream_key, organization_id=organization_id, env=env, scope=scope,
                  key=key, token=token)
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
