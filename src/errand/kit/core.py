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
    # Hands a committed job to whichever runner this process uses: ``await dispatch(job_id)``.
    dispatch: Any = None
