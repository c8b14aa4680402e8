"""At-most-once execution of changing requests, the way Stripe does it.

A key is scoped to (organization, mode, operation): a test key and a live key of one
organization sending the same key make two records, as in Stripe. The first request
claims it in its own short transaction; the operation then runs; its result (success or a
deterministic error) is stored and replayed for the TTL. A retry while the first is still running
waits a few seconds for it and replays, or gets 409. Errors that say "try again"
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
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from errand.kit import clock, crypto, timing
from errand.kit.config import Settings
from errand.kit.db import Database
from errand.kit.errors import Conflict, DomainError, InvalidRequest
from errand.kit.ids import new_id
from errand.models import IdempotencyRecord

_CACHEABLE_KINDS = {"invalid", "not_found", "conflict", "forbidden"}
_POLL_SECONDS = 0.05


@dataclass
class IdempotentResult:
    value: dict[str, Any]
    replayed: bool


def request_digest(request: dict[str, Any]) -> str:
    return crypto.sha256_hex(crypto.canonical_json(request))


def _replay(record: IdempotencyRecord) -> IdempotentResult:
    result = record.result or {}
    if "error" in result:
        error = DomainError.from_dict(result["error"])
        error.replayed = True
        raise error
    return IdempotentResult(value=result["ok"], replayed=True)


async def _claim(
    db: Database, settings: Settings, organization_id: str, env: str, scope: str, key: str, digest: str
) -> tuple[str | None, IdempotencyRecord | None]:
    """Try once to own the key: (token, None) when claimed, (None, record) when someone else has it."""
    now = clock.now()
    token = secrets.token_hex(16)
    async with db.unit_of_work() as session:
        record = (
            await session.execute(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.organization_id == organization_id,
                    IdempotencyRecord.env == env,
                    IdempotencyRecord.scope == scope,
                    IdempotencyRecord.key == key,
                )
            )
        ).scalar_one_or_none()
        if record is not None and record.expires_at <= now:
            await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))
            record = None
        if record is None:
            try:
                async with session.begin_nested():
                    session.add(IdempotencyRecord(
                        id=new_id("idem"), organization_id=organization_id, env=env, scope=scope, key=key,
                        request_hash=digest, state="in_progress", lock_token=token, locked_at=now,
                        result=None, expires_at=now + timedelta(hours=settings.idempotency_ttl_hours),
                    ))
                return token, None
            except IntegrityError:
                return None, None  # lost a race to insert; look again
        if record.request_hash != digest:
            raise Conflict(
                "idempotency_conflict",
                "This Idempotency-Key was already used with a different request body.",
            )
        stale = record.locked_at <= now - timedelta(seconds=settings.idempotency_stale_seconds)
        if record.state == "in_progress" and stale:
            taken = await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == record.id, IdempotencyRecord.lock_token == record.lock_token)
                .values(lock_token=token, locked_at=now)
            )
            if taken.rowcount == 1:
                return token, None
        return None, record


async def _finish(db: Database, organization_id: str, env: str, scope: str, key: str, token: str,
                  result: dict[str, Any] | None) -> None:
    where = (
        IdempotencyRecord.organization_id == organization_id,
        IdempotencyRecord.env == env,
        IdempotencyRecord.scope == scope,
        IdempotencyRecord.key == key,
        IdempotencyRecord.lock_token == token,
    )
    async with db.unit_of_work() as session:
        if result is None:
            await session.execute(delete(IdempotencyRecord).where(*where))
        else:
            await session.execute(
                update(IdempotencyRecord).where(*where).values(state="completed", result=result, updated_at=clock.now())
            )


async def run_idempotent(
    db: Database,
    settings: Settings,
    *,
    organization_id: str,
    env: str,
    scope: str,
    key: str | None,
    request: dict[str, Any],
    operation: Callable[[str], Awaitable[dict[str, Any]]],
) -> IdempotentResult:
    """Run ``operation(downstream_key)`` at most once per (organization, mode, scope, key).

    ``env`` is the caller's mode (``live`` | ``test``); the downstream key differs per mode too,
    so a provider never mistakes a test request for the live one with the same key."""
    if key is None:
        return IdempotentResult(value=await operation(new_id("req")), replayed=False)
    if not key.strip() or len(key) > 255:
        raise InvalidRequest("The Idempotency-Key header must be 1 to 255 characters.")
    digest = request_digest(request)
    # Live keys derive as they did before modes existed, so a retry across the upgrade still matches.
    mode = "" if env == "live" else f"{env}:"
    downstream_key = crypto.sha256_hex(f"{mode}{organization_id}:{scope}:{key}:{digest}")[:48]
    deadline = asyncio.get_running_loop().time() + settings.idempotency_wait_seconds
    while True:
        with timing.phase("idempotency"):
            token, record = await _claim(db, settings, organization_id, env, scope, key, digest)
        if token is not None:
            break
        if record is not None and record.state == "completed":
            return _replay(record)
        if asyncio.get_running_loop().time() >= deadline:
            raise Conflict(
                "idempotency_conflict",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
            )
        await asyncio.sleep(_POLL_SECONDS)
    try:
        value = await operation(downstream_key)
    except DomainError as exc:
        cached = {"error": exc.to_dict()} if exc.kind in _CACHEABLE_KINDS else None
        await _finish(db, organization_id, env, scope, key, token, cached)
        raise
    except BaseException:
        await _finish(db, organization_id, env, scope, key, token, None)
        raise
    await _finish(db, organization_id, env, scope, key, token, {"ok": value})
    return IdempotentResult(value=value, replayed=False)
