"""The browser autopilot end to end: real Errand servers, the sandbox web sites, a real Chromium.

The autopilot's browser is the server's own (one per server's settings); the end user's is
a separate Chromium the tests drive as the person would (opening the handoff page, typing
the test card, using the takeover link). Servers with other settings (a short hold, a
slow site, no browser) share the test server's database and run beside it.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from playwright.async_api import Browser, async_playwright
from sqlalchemy import select

from errand.kit.ids import new_id
from errand.kit.config import Settings
from errand.models import Organization, ProviderOutcome
from errand.providers.browser.pool import LAUNCH_ARGS
from tests.browser.support import CHROMIUM, HAS_CHROMIUM
from tests.conftest import Org, Server, free_port, running

Sibling = Callable[..., AbstractAsyncContextManager[tuple[str, Settings]]]


@pytest.fixture
def sibling(server: Server) -> Sibling:
    """``async with sibling(**settings) as (base_url, settings)``: a second server over the test server's database."""

    @asynccontextmanager
    async def _serve(**overrides: Any) -> AsyncIterator[tuple[str, Settings]]:
        settings = server.settings.model_copy(update={"port": free_port(), **overrides})
        async with running(settings) as base_url:
            yield base_url, settings

    return _serve


@pytest.fixture(scope="module")
async def enduser() -> AsyncIterator[Browser]:
    """The end user's own browser (not the autopilot's)."""
    if not HAS_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(LAUNCH_ARGS))
        try:
            yield browser
        finally:
            await browser.close()


Prefer = Callable[[str], Any]


@pytest.fixture
def prefer_web(server: Server, org: Org) -> Prefer:
    """``await prefer_web(api_provider_id)``: give the org a record of failures there, so its chain tries the web site first.

    The planner orders a chain by each provider's recent success rate in the organization once
    there is enough evidence (5 attempts); a provider with none keeps the benefit of the doubt.
    """

    async def _prefer(provider_id: str) -> None:
        async with server.db.unit_of_work() as session:
            org_id = (await session.execute(select(Organization.id).where(Organization.name == org.name))).scalar_one()
            for _ in range(5):
                session.add(ProviderOutcome(id=new_id("pout"), organization_id=org_id, provider_id=provider_id,
                                            job_id="seeded-by-test", outcome="failed", reason="transient_error"))

    return _prefer
