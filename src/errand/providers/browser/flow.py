"""The steps of a booking on a sandbox-style site, shared by every browser adapter.

A site is a search form, a results page whose offers carry ``data-offer``, a details form and
a checkout page that stops before payment (the DOM contract: docs/sandbox-web.md).
:class:`Forms` names one site's forms and buttons; the functions walk a
:class:`~errand.providers.browser.site.Visit` through them and turn each page reached into
what it means for the job:

- :func:`search`: the results page, or VenueUnknown / VenueNotServed when the site refuses;
- :func:`venue_summary`: what the results page says about the venue;
- :func:`reopen_results`: back to an offer's results (its session, else a new search);
- :func:`choose`: the offer's details page, or NoAvailability when it is gone;
- :func:`outcome`: where the details led: paused at payment, already paid, or an error.

Every unexpected page is ProviderUnavailable.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from errand.kit import tracing
from errand.providers.base import Checkout, Offer
from errand.providers.browser.site import Visit
from errand.providers.errors import NoAvailability, ProviderRejected, ProviderUnavailable, VenueNotServed, VenueUnknown

OFFER = "[data-offer]"


@dataclass(frozen=True)
class Forms:
    """Which forms and buttons one site's booking steps use (CSS selectors)."""

    search: str
    search_button: str
    details: str
    details_button: str


@tracing.traced("browser.search")
async def search(visit: Visit, url: str, forms: Forms, fields: dict[str, Any]) -> None:
    """Fill and submit the search form from the site's front page (``url``); stop on its results page.

    Raises VenueUnknown (no venue of that name), VenueNotServed (not sold, or the form refused
    the search) and ProviderUnavailable (any other page). A results page without offers is fine.
    """
    marker = await visit.open(url)
    if marker != "search":
        raise ProviderUnavailable(visit.provider_id, f"the site's front page is {marker!r}, not the search form")
    await visit.fill(forms.search, fields)
    await visit.snapshot("search-filled")
    marker = await visit.submit(forms.search_button)
    if marker == "no-results":
        reason = await visit.attribute("main[data-page]", "data-reason") or "none-available"
        if reason == "unknown-venue":
            raise VenueUnknown(visit.provider_id, "the site knows no venue of that name")
        if reason == "not-served":
            raise VenueNotServed(visit.provider_id, f"the site does not sell that ({reason})")
        return  # results page without offers
    if marker == "search":
        problems = await visit.form_errors()
        raise VenueNotServed(visit.provider_id,
                             "the site refused the search: " + ("; ".join(problems) or "no reason given"))
    if marker != "results":
        raise ProviderUnavailable(visit.provider_id, f"a search led to an unexpected {marker!r} page")


@tracing.traced("browser.venue_summary")
async def venue_summary(visit: Visit) -> dict[str, str]:
    """What the results page says about the venue: ``#search-summary``'s attributes, the page heading."""
    found = await visit.datasets("#search-summary")
    venue = dict(found[0]) if found else {}
    heading = await visit.text("main h1")
    if heading and "venueName" not in venue:
        venue["venueName"] = heading
    return venue


@tracing.traced("browser.reopen_results")
async def reopen_results(visit: Visit, url: str, forms: Forms, offer: Offer) -> None:
    """The results page listing ``offer``: the search's own session, else a new search."""
    results_url = offer.attributes.get("results_url")
    marker = await visit.open(results_url) if results_url else ""
    if marker != "results":
        fields = offer.attributes.get("search")
        if not fields:
            raise NoAvailability(f"{visit.provider_id}: the offer carries no search to find it again")
        await search(visit, url, forms, fields)


@tracing.traced("browser.choose")
async def choose(visit: Visit, offer: Offer, same: Callable[[Offer, dict[str, str]], bool]) -> None:
    """Choose ``offer`` on the results page (by its key, else the row ``same`` recognises); stop on its details."""
    rows = await visit.datasets(OFFER)
    key = offer.attributes.get("offer_key")
    row = next((r for r in rows if key and r.get("offer") == key), None)
    row = row or next((r for r in rows if same(offer, r)), None)
    if row is None:
        raise NoAvailability(f"{visit.provider_id}: the offer is no longer listed")
    marker = await visit.submit(f'{OFFER}[data-offer="{row["offer"]}"] button[type=submit]')
    if marker == "results":
        raise NoAvailability(f"{visit.provider_id}: the offer was taken while it was being chosen")
    if marker != "details":
        raise ProviderUnavailable(visit.provider_id, f"choosing an offer led to an unexpected {marker!r} page")


@tracing.traced("browser.outcome")
async def outcome(visit: Visit, marker: str) -> Checkout:
    """What the page the details led to (``marker``) means: a checkout, or the error to raise."""
    provider_id = visit.provider_id
    if marker == "checkout":
        return await _paused_at_payment(visit)
    if marker == "confirmation":
        # A re-run whose hold the end user already paid: the booking is done.
        summary = (await visit.datasets("#hold-summary") or [{}])[0]
        confirmation = await visit.text("#confirmation-number")
        return Checkout(status="completed", hold_id=summary.get("holdId") or "", confirmation=confirmation)
    if marker == "sold-out":
        raise NoAvailability(f"{provider_id}: the offer sold out while the details were typed")
    if marker == "checkout-expired":
        raise NoAvailability(f"{provider_id}: the hold made under this reference has lapsed")
    if marker == "details":
        problems = "; ".join(await visit.form_errors()) or "no reason given"
        raise ProviderRejected(f"{provider_id} refused the traveler details: {problems}",
                               details={"provider": provider_id, "provider_error": "invalid_details"})
    if marker == "session-expired":
        raise ProviderUnavailable(provider_id, "the site's session expired during checkout")
    raise ProviderUnavailable(provider_id, f"the details led to an unexpected {marker!r} page")


async def _paused_at_payment(visit: Visit) -> Checkout:
    """The checkout page: its hold, handed off to the end user with every card field still empty."""
    await visit.assert_card_fields_untouched()
    summary = (await visit.datasets("#hold-summary") or [{}])[0]
    hold_id = summary.get("holdId")
    if not hold_id:
        raise ProviderUnavailable(visit.provider_id, "the checkout page shows no hold")
    expires = summary.get("expiresAt")
    return Checkout(status="paused_payment", hold_id=hold_id, handoff_url=visit.page.url,
                    expires_at=datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None)
