"""Providers registered by id through the ``errand.providers`` entry-point group.

A real provider is a package that declares an entry point; nothing in the core names one.
"""

from importlib.metadata import entry_points
from typing import Any

from errand.kit.config import Settings

GROUP = "errand.providers"


class ProviderRegistry:
    def __init__(self, providers: list[Any]) -> None:
        # A provider's ``priority`` (lower first, default 100) is its place in a fallback chain
        # until success-rate metrics say otherwise; ties keep the id order.
        ordered = sorted(providers, key=lambda p: (getattr(p, "priority", 100), p.id))
        self._by_id = {p.id: p for p in ordered}

    @classmethod
    def from_entry_points(cls, settings: Settings) -> "ProviderRegistry":
        providers = [ep.load()(settings) for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)]
        return cls(providers)

    def get(self, provider_id: str) -> Any | None:
        return self._by_id.get(provider_id)

    def all(self) -> list[Any]:
        return list(self._by_id.values())

    def for_scenario(self, scenario: str, *, key_env: str) -> list[Any]:
        """Providers able to serve a scenario; test keys only ever reach sandbox providers."""
        return [
            p for p in self._by_id.values()
            if scenario in p.scenarios and (key_env == "live" or p.sandbox)
        ]

    async def aclose(self) -> None:
        """Close every provider; the HTTP adapters release the pooled client they share
        (:mod:`errand.providers.http`), which closes with the last of them."""
        for provider in self._by_id.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()
