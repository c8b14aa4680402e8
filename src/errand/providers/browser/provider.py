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
The pages themselves are walked by :mod:`errand.providers.browser.flow`; a subclass says
what its site's forms are called (:class:`~errand.providers.browser.flow.Forms`, the
search and details field names) and how its offers read.
"""

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

from playwright._impl._errors import Error as PlaywrightError  # = playwright.async_api.Error, without the whole API (see pool.py)

from errand.kit import metrics
from errand.kit.config import Settings
from errand.providers.base import Checkout, Offer, ProviderAdapter, SearchQuery, VenueListing, VenueQuery
from errand.providers.browser import flow
from errand.providers.browser.flow import OFFER, Forms
from errand.providers.browser.pool import BrowserPool, BrowserUnavailable, forget_shared_pool, shared_pool
from errand.providers.browser.site import Visit
from errand.providers.errors import ProviderUnavailable
from errand.providers.sandbox import SandboxVenueFeed


def money(value: str | None) -> Decimal:
    try:
        return Decimal(str(value).replace("$", "").replace(",", "").strip())
    except (InvalidOperation, ValueError):
        return Decimal(0)


def slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def traveler_value(traveler: Mapping[str, Any], key: str) -> Any:
    """One traveler profile value as a site's form takes it; ``full_name`` joins the two names."""
    if key in ("first_name", "last_name"):
        return str(traveler.get(key) or "")
    if key == "full_name":
        return f"{traveler_value(traveler, 'first_name')} {traveler_value(traveler, 'last_name')}".strip()
    if key == "passport_country":
        return (traveler.get(key) or "").upper()[:2] or None
    return traveler.get(key)


class WebProvider(ProviderAdapter):
    """Base for adapters that book through a provider's web site; subclasses describe their site.

    A subclass sets ``forms``, ``search_names`` (search form field → :class:`SearchQuery`
    attribute) and ``details_names`` (details form field → traveler profile key, as
    :func:`traveler_value` reads it), and reads its offers (:meth:`to_offer`, :meth:`same_offer`).
    """

    # After the JSON-API providers of the same scenario: a browser is the slow way in.
    priority = 30
    kind = "browser"
    stops_at_payment = True  # the sites stop at their checkout page, before any card field

    forms: Forms
    search_names: Mapping[str, str]
    details_names: Mapping[str, str]

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
        return {name: getattr(query, attribute) for name, attribute in self.search_names.items()}

    def details_fields(self, traveler: dict[str, Any]) -> dict[str, Any]:
        return {name: traveler_value(traveler, key) for name, key in self.details_names.items()}

    def to_offer(self, query: SearchQuery, row: dict[str, str], venue: dict[str, str]) -> Offer:
        raise NotImplementedError

    def same_offer(self, offer: Offer, row: dict[str, str]) -> bool:
        """Whether a results row (from another session) is the offer that was chosen."""
        raise NotImplementedError

    # --- the job API ----------------------------------------------------------------------

    @metrics.provider_call
    async def search(self, query: SearchQuery) -> list[Offer]:
        fields = self.search_fields(query)
        async with self._visit() as visit:
            await flow.search(visit, self.site_url, self.forms, fields)
            rows = await visit.datasets(OFFER)
            venue = await flow.venue_summary(visit)
            results_url = visit.page.url
        offers = []
        for row in rows:
            offer = self.to_offer(query, row, venue)
            offer.attributes.update(offer_key=row.get("offer"), results_url=results_url, search=fields)
            offers.append(offer)
        return offers

    @metrics.provider_call
    async def alternatives(self, query: SearchQuery) -> list[Offer]:
        return []

    @metrics.provider_call
    async def checkout(self, offer: Offer, traveler: dict[str, Any], *, idempotency_key: str) -> Checkout:
        async with self._visit() as visit:
            await flow.reopen_results(visit, self.site_url, self.forms, offer)
            await flow.choose(visit, offer, self.same_offer)
            await visit.fill(self.forms.details, {**self.details_fields(traveler), "reference": idempotency_key})
            await visit.snapshot("details-filled")
            marker = await visit.submit(self.forms.details_button)
            return await flow.outcome(visit, marker)
