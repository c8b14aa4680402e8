"""The process-wide parts every service needs, built once by the composition root."""

from dataclasses import dataclass
from typing import Any

from errand.kit.config import Settings
from errand.kit.db import Database


@dataclass
class Core:
    settings: Settings
    db: Database
    # errand.providers.registry.ProviderRegistry; typed loosely so kit stays the bottom layer.
    providers: Any
    # errand.guard.rate_limits.RateLimits
    rate_limits: Any
    # errand.identity.authenticator.Authenticator: API keys checked from a short-lived cache.
    authenticator: Any
    # errand.guard.policies.PolicyCache: each organization's enabled policies, briefly cached.
    policy_cache: Any
    # errand.kit.tasks.TaskRegistry: every domain's tasks and periodic work (the runners register them).
    tasks: Any = None
    # errand.approvals.subjects.ApprovalSubjects: what each kind of approval gates.
    approval_subjects: Any = None
    # errand.outbox.consumers.EventConsumers: who receives Errand's own events (automations, webhooks).
    event_consumers: Any = None

    async def aclose(self) -> None:
        """Release what the process holds, once, when it stops: write the keys' pending last-use
        times, close the providers' HTTP clients, then the database's connections."""
        try:
            await self.authenticator.aclose()
        finally:
            await self.providers.aclose()
            await self.db.dispose()
