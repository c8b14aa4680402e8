"""Injected faults: the sandbox misbehaving on purpose, per app instance.

Like a payment platform's test mode, the sandbox can be configured (``Settings.sandbox_faults``,
env ``ERRAND_SANDBOX_FAULTS``, JSON) to delay every request to a provider and to fail a
share of them, so that retries, timeouts and fallback can be tested and benchmarked::

    {"sandbox-air": {"latency_ms": 200, "error_rate": 0.1, "captcha_rate": 0.05}}

``latency_ms`` and ``error_rate`` (503 ``injected_fault``) apply to every API and web
page of the provider; ``login_rate`` and ``captcha_rate`` to the job API, whose callers
know those outcomes, and to the web sites, where they are rolled once per visitor session
(:meth:`FaultInjector.roll_obstacle`) and met at the details step like a venue's. The configuration is read once, when the app is built: a malformed one
fails at startup, not on the first request.
"""

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from errand.sandbox.catalog import load_catalog
from errand.sandbox.errors import CaptchaRequired, InjectedFault, LoginRequired

EXAMPLE = '{"sandbox-tables": {"latency_ms": 200, "error_rate": 0.1}}'


@dataclass(frozen=True)
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    login_rate: float = 0.0
    captcha_rate: float = 0.0

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.login_rate, self.captcha_rate)
        if self.latency_ms < 0 or not all(0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError("latency_ms must be >= 0 and every rate between 0 and 1")


class FaultInjector:
    """Applies each provider's configured faults to the requests it serves."""

    def __init__(self, config: Mapping[str, Mapping[str, Any]] | None) -> None:
        try:
            self._faults = {provider_id: Faults(**dict(entry)) for provider_id, entry in (config or {}).items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sandbox faults must look like {EXAMPLE}: {exc}") from exc
        unknown = set(self._faults) - set(load_catalog())
        if unknown:
            raise ValueError(f"sandbox faults name unknown providers: {sorted(unknown)}")

    async def apply(self, provider_id: str, *, job_api: bool) -> None:
        faults = self._faults.get(provider_id)
        if faults is None:
            return
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        # Not security-sensitive: a share of requests fails, on average.
        if faults.error_rate and random.random() < faults.error_rate:  # noqa: S311
            raise InjectedFault(f"{provider_id} failed on purpose (sandbox faults).")
        if job_api and faults.captcha_rate and random.random() < faults.captcha_rate:  # noqa: S311
            raise CaptchaRequired(f"{provider_id} shows a CAPTCHA on purpose (sandbox faults).")
        if job_api and faults.login_rate and random.random() < faults.login_rate:  # noqa: S311
            raise LoginRequired(f"{provider_id} asks to sign in on purpose (sandbox faults).")

    def roll_obstacle(self, provider_id: str) -> str | None:
        """For a new web session: ``"captcha"`` or ``"login"`` by the configured rates, else None."""
        faults = self._faults.get(provider_id)
        if faults is None:
            return None
        if faults.captcha_rate and random.random() < faults.captcha_rate:  # noqa: S311
            return "captcha"
        if faults.login_rate and random.random() < faults.login_rate:  # noqa: S311
            return "login"
        return None
