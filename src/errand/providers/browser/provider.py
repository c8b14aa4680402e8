"""Browser adapters: a :class:`~errand.providers.base.JobProvider` that drives a booking web site.

A :class:`WebProvider` does with a real Chromium what a person does on the site, following
the sites' DOM contract (``docs/sandbox-web.md``): pages are told apart by their
``main[data-page]`` marker, never by titles or texts.

- ``search`` opens the search form, fills it from the query, submits it and reads every
  offer of the results page (``[data-offer]`` and its ``data-*`` attributes). A venue the
  site does not know is VenueUnknown, one (or a route) it does not serve VenueNotServed;
  nothing free is ``[]``. The offer remembers the results page of its session, so a
  checkout can continue it.
- ``alternatives`` is ``[]``: these sites have no "similar venues" page.
- ``search_venues`` reads the site's venues feed over plain HTTP (no browser), as an
  aggregator reads a site's listings.
- ``checkout`` continues the search's session (or searches again if it expired), chooses
  the offer, fills the guest details from the traveler profile and the job's idempotency
  key as the booking ``reference`` (the site sends a second submission under the same
  reference to the first hold's checkout page, so a re-run never holds twice), submits,
  and stops at the checkout page without touching a card field: ``paused_payment`` with
  that page as the handoff URL. A login wall or CAPTCHA is NeedsLogin / CaptchaRequired
  with the site's takeover link; an offer that vanished meanwhile, or a hold of this
  reference that lapsed, is NoAvailability; details the site refuses are ProviderRejected
  (``provider_rejected``) (the chain stops: another site would be given the same data).

Every page load and action leaves a screenshot through the job's snapshot sink. Each step
(one search, one checkout) runs in a browser context of its own, borrowed from the
process's :class:`~errand.providers.browser.pool.BrowserPool` and closed on the way out.
"""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from playwright._impl._errors import Error as PlaywrightError  # = playwright.async_api.Error, without the whole API (see pool.py)

from errand.kit.config import Settings
from errand.providers.base import Checkout, Offer, SearchQuery, VenueListing, VenueQuery
from errand.providers.errors import NoAvailability, ProviderRejected, ProviderUnavailable, VenueNotServed, VenueUnknown
from errand.providers.browser.pool import BrowserPool, BrowserUnavailable, forget_shared_pool, shared_pool
from errand.providers.browser.site import Visit
from errand.providers.sandbox import SandboxVenueFeed

OFFER = "[data-offer]"


def money(value: str | None) -> Decimal:
    try:
        return Decimal(str(value).replace("$", "").replace(",", "").strip())
    except (InvalidOperation, ValueError):
        return Decimal(0)


def slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


class WebProvider:
    """Base for adapters that book through a provider's web site; subclasses describe their site."""

    id: str
    display_name: str
    scenarios: tuple[str, ...]
    # After the JSON-API providers of the same scenario: a browser is the slow way in.
    priority: int = 30
    kind: str = "browser"
    sandbox: bool = True
    stops_at_payment: bool = True  # the sites stop at their checkout page, before any card field

    search_form: str
    search_button: str
    details_form: str
    details_button: str

    def __init__(self, settings: Settings, pool: BrowserPool | None = None) -> None:
        self._settings = settings
        self.site_url = f"{settings.effective_sandbox_url.rstrip('/')}/web/{self.id}/"
        self._pool = pool or shared_pool(settings)
        self._timeout = settings.provider_timeout_seconds
        self._feed = SandboxVenueFeed(settings, self.id, self.scenarios)

    async def search_venues(self, query: VenueQuery) -> list[VenueListing]:
        """The venues the site sells, from its catalog feed: a listing needs no browser."""
        return await self._feed.search_venues(query)

    async def available(self) -> bool:
        """Whether a browser can be had; False makes the planner skip this provider (browser_unavailable)."""
        return await self._pool.available()

    async def aclose(self) -> None:
        await self._feed.aclose()
        # The four adapters share the pool: the first to close it closes the browser.
        await self._pool.aclose()
        forget_shared_pool(self._settings, self._pool)

    @asynccontextmanager
    async def _visit(self) -> AsyncIterator[Visit]:
        try:
            async with self._pool.context(locale="en-US", viewport={"width": 1024, "height": 900}) as context:
                context.set_default_timeout(self._timeout * 1000)
                yield Visit(self.id, await context.new_page(), self._timeout)
        except BrowserUnavailable as exc:
            raise ProviderUnavailable(self.id, f"browser_unavailable: {exc}") from None
        except PlaywrightError as exc:
            # The page or the browser went away mid-step (a crash, a closed target): retryable.
            first = (exc.message or type(exc).__name__).splitlines()[0][:160]
            raise ProviderUnavailable(self.id, f"the browser failed: {first}") from None

    # --- what each site fills in and reads --------------------------------------------

    def search_fields(self, query: SearchQuery) -> dict[str, Any]:
        raise NotImplementedError

    def details_fields(self, traveler: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def to_offer(self, query: SearchQuery, row: dict[str, str], venue: dict[str, str]) -> Offer:
        raise NotImplementedError

    def same_offer(self, offer: Offer, row: dict[str, str]) -> bool:
        """Whether a results row (from another session) is the offer that was chosen."""
        raise NotImplementedError

    # --- the job API ----------------------------------------------------------------------

    async def search(self, query: SearchQuery) -> list[Offer]:
        fields = self.search_fields(query)
        async with self._visit() as visit:
            await self._search(visit, fields)
            rows = await visit.datasets(OFFER)
            venue = await self._venue(visit)
            results_url = visit.page.url
        offers = []
        for row in rows:
            offer = self.to_offer(query, row, venue)
            offer.attributes.update(offer_key=row.get("offer"), results_url=results_url, search=fields)
            offers.append(offer)
        return offers

    async def alternatives(self, query: SearchQuery) -> list[Offer]:
        return []

    async def checkout(self, offer: Offer, traveler: dict[str, Any], *, idempotency_key: str) -> Checkout:
        async with self._visit() as visit:
            await self._results_for(visit, offer)
            await self._choose(visit, offer)
            await visit.fill(self.details_form, {**self.details_fields(traveler), "reference": idempotency_key})
            await visit.snapshot("details-filled")
            marker = await visit.submit(self.details_button)
            return await self._stopped_at(visit, marker)

    # --- steps ------------------------------------------------------------------------

    async def _search(self, visit: Visit, fields: dict[str, Any]) -> None:
        marker = await visit.open(self.site_url)
        if marker != "search":
            raise ProviderUnavailable(self.id, f"the site's front page is {marker!r}, not the search form")
        await visit.fill(self.search_form, fields)
        await visit.snapshot("search-filled")
        marker = await visit.submit(self.search_button)
        if marker == "no-results":
            reason = await visit.attribute("main[data-page]", "data-reason") or "none-available"
            if reason == "unknown-venue":
                raise VenueUnknown(self.id, "the site knows no venue of that name")
            if reason == "not-served":
                raise VenueNotServed(self.id, f"the site does not sell that ({reason})")
            return  # results page without offers
        if marker == "search":
            problems = await visit.form_errors()
            raise VenueNotServed(self.id, "the site refused the search: " + ("; ".join(problems) or "no reason given"))
        if marker != "results":
            raise ProviderUnavailable(self.id, f"a search led to an unexpected {marker!r} page")

    async def _venue(self, visit: Visit) -> dict[str, str]:
        """What the results page says about the venue: ``#search-summary``'s attributes, the page heading."""
        found = await visit.datasets("#search-summary")
        venue = dict(found[0]) if found else {}
        heading = await visit.text("main h1")
        if heading and "venueName" not in venue:
            venue["venueName"] = heading
        return venue

    async def _results_for(self, visit: Visit, offer: Offer) -> None:
        """The results page listing ``offer``: the search's own session, else a new search."""
        results_url = offer.attributes.get("results_url")
        marker = await visit.open(results_url) if results_url else ""
        if marker != "results":
            fields = offer.attributes.get("search")
            if not fields:
                raise NoAvailability(f"{self.id}: the offer carries no search to find it again")
            await self._search(visit, fields)

    async def _choose(self, visit: Visit, offer: Offer) -> None:
        rows = await visit.datasets(OFFER)
        key = offer.attributes.get("offer_key")
        row = next((r for r in rows if key and r.get("offer") == key), None)
        row = row or next((r for r in rows if self.same_offer(offer, r)), None)
        if row is None:
            raise NoAvailability(f"{self.id}: the offer is no longer listed")
        selector = f'{OFFER}[data-offer="{row["offer"]}"] button[type=submit]'
        marker = await visit.submit(selector)
        if marker == "results":
            raise NoAvailability(f"{self.id}: the offer was taken while it was being chosen")
        if marker != "details":
            raise ProviderUnavailable(self.id, f"choosing an offer led to an unexpected {marker!r} page")

    async def _stopped_at(self, visit: Visit, marker: str) -> Checkout:
        if marker == "checkout":
            await visit.assert_card_fields_untouched()
            summary = (await visit.datasets("#hold-summary") or [{}])[0]
            hold_id = summary.get("holdId")
            if not hold_id:
                raise ProviderUnavailable(self.id, "the checkout page shows no hold")
            expires = summary.get("expiresAt")
            return Checkout(status="paused_payment", hold_id=hold_id, handoff_url=visit.page.url,
                            expires_at=datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None)
        if marker == "confirmation":
            # A re-run whose hold the end user already paid: the booking is done.
            summary = (await visit.datasets("#hold-summary") or [{}])[0]
            confirmation = await visit.text("#confirmation-number")
            return Checkout(status="completed", hold_id=summary.get("holdId") or "", confirmation=confirmation)
        if marker == "sold-out":
            raise NoAvailability(f"{self.id}: the offer sold out while the details were typed")
        if marker == "checkout-expired":
            raise NoAvailability(f"{self.id}: the hold made under this reference has lapsed")
        if marker == "details":
            problems = "; ".join(await visit.form_errors()) or "no reason given"
            raise ProviderRejected(f"{self.id} refused the traveler details: {problems}",
                                   details={"provider": self.id, "provider_error": "invalid_details"})
        if marker == "session-expired":
            raise ProviderUnavailable(self.id, "the site's session expired during checkout")
        raise ProviderUnavailable(self.id, f"the details led to an unexpected {marker!r} page")
