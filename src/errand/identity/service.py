"""Organizations and API keys.

Only the SHA-256 of a key is stored. Checking a key on a request is
:class:`errand.identity.authenticator.Authenticator`'s work (cached for at most a second,
dropped at once here on revocation).
"""

import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from errand.identity import authenticator
from errand.identity.errors import (
    AmbiguousPrefix, AuthBackendUnavailable, EmptyApiKey, InvalidApiKey, InvalidAuthScheme, MalformedApiKey,
    MissingAuthorization, ScenarioNotAllowed,
)
from errand.identity.schemas import IssuedKey, Principal
from errand.kit import clock, crypto
from errand.kit.errors import Forbidden, InvalidRequest, NotFound
from errand.kit.ids import new_id
from errand.models import ApiKey, Organization

__all__ = [
    "ROLES", "SCENARIOS", "AmbiguousPrefix", "AuthBackendUnavailable", "EmptyApiKey", "InvalidApiKey",
    "InvalidAuthScheme", "MalformedApiKey", "MissingAuthorization", "ScenarioNotAllowed", "agent_principal", "create_api_key",
    "get_or_create_organization", "has_organizations", "parse_authorization", "require_admin",
    "require_scenario", "revoke_api_key",
]

SCENARIOS = ("restaurant", "hotel", "flight", "activity")
ROLES = ("agent", "admin")


def parse_authorization(header: str | None) -> str:
    """The key from an ``Authorization: Bearer …`` header, or the precise reason it is unusable:
    MissingAuthorization, InvalidAuthScheme or EmptyApiKey (each Unauthorized, 401)."""
    if header is None or not header.strip():
        raise MissingAuthorization("The Authorization header is missing.")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidAuthScheme("Use 'Authorization: Bearer <api key>'.")
    value = value.strip()
    if not value:
        raise EmptyApiKey("The Bearer token is empty.")
    return value


def require_scenario(principal: Principal, scenario: str) -> None:
    """Refuse a key that is not scoped to ``scenario``, for any operation on any object of it.

    A key's ``scenarios`` bound everything it does: creating, reading, changing, cancelling
    and searching. Raises ScenarioNotAllowed ``scenario_not_allowed`` (403; POLICY_VIOLATION in the
    reservations dialect and MCP). Lists do not raise: they show only the key's scenarios.
    """
    if scenario not in principal.scenarios:
        raise ScenarioNotAllowed(
            f"This API key may not act on the {scenario} scenario (allowed: {', '.join(principal.scenarios)}).",
        )


def require_admin(principal: Principal, doing: str = "This") -> None:
    """Refuse a caller without the admin role: ``doing`` names what was asked ("Approvals",
    "Managing policies"). Raises Forbidden ``forbidden`` (403 in every dialect)."""
    if not principal.is_admin:
        raise Forbidden(f"{doing} needs an admin key (errand create-api-key --role admin).")


async def agent_principal(session: AsyncSession, organization_id: str, env: str, agent_id: str, *,
                          rate_limit_per_day: int) -> Principal:
    """The organization itself in mode ``env`` (live | test), acting through its automation agent
    ``agent_id`` (issue 12, ``product_action``): what an API key's principal is for a request.

    Role ``agent`` (an automation may decide no approval: :func:`require_admin` refuses it), every
    scenario, the given daily limit (the organization default). There is no key: ``api_key_id`` is
    ``agent:<agent id>`` (at most 40 characters, as the columns that keep it), the audit ``actor``
    is ``agent:<agent id>``. Raises NotFound for an unknown organization, InvalidRequest for a mode
    other than live or test."""
    if env not in ("live", "test"):
        raise InvalidRequest("env must be 'live' or 'test'.")
    org = await session.get(Organization, organization_id)
    if org is None:
        raise NotFound(f"Organization {organization_id} not found.")
    return Principal(
        organization_id=org.id, organization_name=org.name, api_key_id=f"agent:{agent_id}"[:40],
        key_prefix=agent_id, env=env, role="agent", scenarios=SCENARIOS, rate_limit_per_day=rate_limit_per_day,
        actor_kind="agent",
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
    """Revoke the one key whose displayed prefix (or id) is given.

    It stops working at once in this process (every authenticator here forgets it, again when
    the caller's transaction commits) and within ``ERRAND_AUTH_CACHE_SECONDS`` (≤ 1 s) in other
    processes, whose caches expire. Raises NotFound, or AmbiguousPrefix (Conflict ``ambiguous_prefix``)."""
    keys = (
        await session.execute(select(ApiKey).where((ApiKey.prefix == prefix) | (ApiKey.id == prefix)))
    ).scalars().all()
    if not keys:
        raise NotFound(f"No API key with prefix or id {prefix!r}.")
    if len(keys) > 1:
        raise AmbiguousPrefix(f"{len(keys)} keys share the prefix {prefix!r}; revoke by id.")
    key = keys[0]
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        await session.flush()
    authenticator.forget(session, key.key_hash)
    return key


async def has_organizations(session: AsyncSession) -> bool:
    return (await session.execute(select(Organization.id).limit(1))).first() is not None
