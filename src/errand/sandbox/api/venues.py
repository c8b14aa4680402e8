"""The venues API every sandbox provider serves: ``GET /api/{provider_id}/venues``.

What a real provider's catalog feed does: list the venues it sells, so that Errand can
answer "which Italian restaurants are there in Chicago?" before any date is known. It is
read-only and never meets a venue's obstacles; injected latency and errors do apply.
Web-only providers publish it too (as real booking sites feed their listings to
aggregators), although they have no job API: it is how their adapters list what they sell
without driving a browser.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from errand.sandbox import catalog
from errand.sandbox.faults import FaultInjector
from errand.sandbox.venues import VENUE_SCENARIOS, listings

Filter = Annotated[str | None, Query(max_length=200)]


def routes(faults: FaultInjector, authenticated: Callable[..., Awaitable[None]]) -> APIRouter:
    """The venues API; every route first runs ``authenticated`` (the caller's credential for the provider)."""
    router = APIRouter(prefix="/api/{provider_id}", tags=["venues API"], dependencies=[Depends(authenticated)])

    @router.get("/venues")
    async def list_venues(
        provider_id: str,
        scenario: Annotated[str | None, Query(pattern="^(" + "|".join(VENUE_SCENARIOS) + ")$")] = None,
        city: Filter = None,
    ) -> Any:
        """Venues this provider sells (restaurants, hotels, events), of `scenario` and in `city` (exact,
        case-insensitive) when given, by city then name. Venues behind a login wall or CAPTCHA are listed."""
        provider = catalog.require(provider_id)
        await faults.apply(provider_id, job_api=False)
        return {"venues": listings(provider, scenario, city)}

    return router
