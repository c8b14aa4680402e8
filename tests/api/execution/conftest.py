"""Fixtures of the job tests: a server whose sandbox answers slowly, and consent that keeps to API providers."""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.execution.support import SLOW_SECONDS
from tests.conftest import Org, Server, free_port, running


@pytest.fixture(scope="module")
async def slow_url(server: Server) -> AsyncIterator[str]:
    """Base URL of a server sharing ``server``'s database, its sandbox-tables delayed by SLOW_SECONDS.

    Its jobs reach its own sandbox (the adapters use the serving port), so only they are slowed.
    """
    settings = server.settings.model_copy(update={
        "port": free_port(), "sandbox_faults": {"sandbox-tables": {"latency_ms": int(SLOW_SECONDS * 1000)}},
    })
    async with running(settings) as base_url:
        yield base_url


@pytest.fixture
async def api_only(org: Org) -> dict[str, Any]:
    """Consent that blocks the browser providers (kind ``browser``, last in every chain).

    A job that fails at every JSON-API provider would go on to drive a real browser through
    the sandbox web sites, which is slow; tests/browser covers those. Jobs that must meet
    every API provider's wall keep to the API providers with this.
    """
    response = await org.agent.get("/api/v1/providers")
    assert response.status_code == 200, response.text
    return {"blockedProviders": [p["id"] for p in response.json()["providers"] if p["kind"] == "browser"]}
