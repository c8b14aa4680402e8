"""Organizations and API keys.

Only the SHA-256 of a key is stored. A malformed key is refused before the database is
touched; a well-formed one is looked up by its digest, and unknown, revoked and expired
keys take the same path and give the same answer, so timing tells nothing about which.
"""

import re
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from errand.identity.schemas import IssuedKey, Principal
from errand.kit import clock, crypto
from errand.kit.db import Database
from errand.kit.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthorized
from errand.kit.ids import new_id
from errand.models import ApiKey, Organization

KEY_PATTERN = re.compile(r"^(ogk|ar)_(live|test)_[A-Za-z0-9_-]{16,}$")
SCENARIOS = ("restaurant", "hotel", "flight", "activity")
ROLES = ("agent", "admin")
_DUMMY_HASH = crypto.sha256_hex("errand-no-such-key")


def parse_authorization(header: str | None) -> str:
    """The key from an ``Authorization: Bearer …`` header, or the precise reason it is unusable."""
    if header is None or not header.strip():
        raise Unauthorized("missing_authorization", "The Authorization header is missing.")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("invalid_auth_scheme", "Use 'Authorization: Bearer <api key>'.")
    value = value.strip()
    if not value:
        raise Unauthorized("empty_api_key", "The Bearer token is empty.")
    return value


async def authenticate(db: Database, raw_key: str) -> Principal:
    """The principal for a key. Raises Unauthorized, or Unavailable when the database is down."""
    if not KEY_PATTERN.fullmatch(raw_key):
        raise Unauthorized("malformed_api_key", "The API key is malformed.")
    digest = crypto.sha256_hex(raw_key)
    now = clock.now()
    async with db.unit_of_work() as session:
        row = (
            await session.execute(
                select(ApiKey, Organization.name)
                .join(Organization, Organization.id == ApiKey.organization_id)
                .where(ApiKey.key_hash == digest)
            )
        ).first()
        stored_hash = row[0].key_hash if row else _DUMMY_HASH
        matches = crypto.constant_time_equal(stored_hash, digest)
        key = row[0] if row else None
        usable = (
            matches and key is not None and key.revoked_at is None
            and (key.expires_at is None or key.expires_at > now)
        )
        if not usable or key is None or row is None:
            raise Unauthorized("invalid_api_key", "The API key is not valid.")
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        return Principal(
            organization_id=key.organization_id,
            organization_name=row[1],
            api_key_id=key.id,
            key_prefix=key.prefix,
            env=key.env,
            role=key.role,
            scenarios=tuple(key.scenarios),
            rate_limit_per_day=key.rate_limit_per_day,
        )


def require_scenario(principal: Principal, scenario: str) -> None:
    """Refuse a key that is not scoped to ``scenario``, for any operation on any object of it.

    A key's ``scenarios`` bound everything it does: creating, reading, changing, cancelling
    and searching. Raises Forbidden ``scenario_not_allowed`` (403; POLICY_VIOLATION in the
    reservations dialect and MCP). Lists do not raise: they show only the key's scenarios.
    """
    if scenario not in principal.scenarios:
        raise Forbidden(
            "scenario_not_allowed",
            f"This API key may not act on the {scenario} scenario (allowed: {', '.join(principal.scenarios)}).",
        )


async def get_or_create_organization(session: AsyncSession, name: str) -> Organization:
    name = name.strip()
    if not name:
        raise InvalidRequest("The organization name must not be empty.")
    org = (await session.execute(select(Organization).where(Organization.name == name))).scalar_one_or_none()
    if org is None:
        org = Organization(id=new_id("org"), name=name)
        session.add(org)
        await session.flush()
    return org


async def create_api_key(
    session: AsyncSession,
    *,
    organization_name: str,
    env: str,
    scenarios: list[str],
    prefix: str = "ar",
    role: str = "agent",
    name: str | None = None,
    expires_in_days: int | None = None,
    rate_limit_per_day: int = 10_000,
) -> IssuedKey:
    """Mint a key for an organization (created if it does not exist)."""
    if env not in ("live", "test"):
        raise InvalidRequest("env must be 'live' or 'test'.")
    if prefix not in ("ogk", "ar"):
        raise InvalidRequest("prefix must be 'ogk' or 'ar'.")
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}.")
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown or not scenarios:
        raise InvalidRequest(f"scenarios must be a non-empty subset of {', '.join(SCENARIOS)}.")
    if expires_in_days is not None and expires_in_days < 1:
        raise InvalidRequest("expires-in-days must be at least 1.")
    if rate_limit_per_day < 1:
        raise InvalidRequest("rate-limit-per-day must be at least 1.")
    org = await get_or_create_organization(session, organization_name)
    plaintext = f"{prefix}_{env}_{secrets.token_urlsafe(32)}"
    expires_at = clock.now() + timedelta(days=expires_in_days) if expires_in_days else None
    ordered = tuple(s for s in SCENARIOS if s in scenarios)
    key = ApiKey(
        id=new_id("key"),
        organization_id=org.id,
        name=name,
        prefix=plaintext[:12],
        key_hash=crypto.sha256_hex(plaintext),
        env=env,
        role=role,
        scenarios=list(ordered),
        rate_limit_per_day=rate_limit_per_day,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return IssuedKey(
        id=key.id, organization_id=org.id, organization_name=org.name, prefix=key.prefix,
        env=env, role=role, scenarios=ordered, expires_at=expires_at, plaintext=plaintext,
    )


async def revoke_api_key(session: AsyncSession, prefix: str) -> ApiKey:
    """Revoke the one key whose displayed prefix (or id) is given; it stops working at once."""
    keys = (
        await session.execute(select(ApiKey).where((ApiKey.prefix == prefix) | (ApiKey.id == prefix)))
    ).scalars().all()
    if not keys:
        raise NotFound("not_found", f"No API key with prefix or id {prefix!r}.")
    if len(keys) > 1:
        raise Conflict("ambiguous_prefix", f"{len(keys)} keys share the prefix {prefix!r}; revoke by id.")
    key = keys[0]
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        await session.flush()
    return key


async def has_organizations(session: AsyncSession) -> bool:
    return (await session.execute(select(Organization.id).limit(1))).first() is not None
