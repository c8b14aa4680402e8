from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key of one organization, with what it may do."""

    organization_id: str
    organization_name: str
    api_key_id: str
    key_prefix: str
    env: str  # live | test
    role: str  # agent | admin
    scenarios: tuple[str, ...]
    rate_limit_per_day: int
    # What the audit trail calls the caller: ``api_key:<prefix>``, or ``agent:<agent id>`` for an
    # automation acting for its organization (errand.identity.service.agent_principal).
    actor_kind: str = "api_key"

    @property
    def actor(self) -> str:
        return f"{self.actor_kind}:{self.key_prefix}"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class IssuedKey:
    """A key as minted: the plaintext exists only here, once."""

    id: str
    organization_id: str
    organization_name: str
    prefix: str
    env: str
    role: str
    scenarios: tuple[str, ...]
    expires_at: datetime | None
    plaintext: str
