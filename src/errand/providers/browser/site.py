"""Driving one booking web site in one browser context: pages, forms, obstacles, screenshots.

:class:`Visit` is what every browser adapter steps through. Each navigation (a link, or a
form POST and its redirect) is followed by :meth:`Visit.arrive`, which reads the page's
``main[data-page]`` marker, saves a screenshot (its form fields masked) through the job's
snapshot sink, and turns what the site says into the core's errors:

- a 5xx answer, an ``error`` page, a timeout or a connection failure → ProviderUnavailable;
- ``login-wall`` → NeedsLogin and ``captcha`` → CaptchaRequired, both carrying the page's
  one-time ``#takeover`` link as ``session_url`` so the end user can continue from there;
- anything else is returned for the adapter to judge (results, details, checkout, …).

The autopilot never types card data (:mod:`errand.providers.browser.cards` says what a card
field is): :meth:`Visit.fill` refuses any card field with :class:`CardFieldRefused` before touching it,
:meth:`Visit.submit` refuses to submit a form that has card fields, and
:meth:`Visit.assert_card_fields_untouched` checks on the payment page that every card
field is still empty when the autopilot stops there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playwright._impl._errors import Error as PlaywrightError  # = playwright.async_api.Error, without the whole API (see pool.py)

from errand.kit.logging import get_logger
from errand.providers.base import snapshot_sink
from errand.providers.browser.cards import CardFieldRefused, filled_card_fields, is_card_field, submits_payment
from errand.providers.errors import CaptchaRequired, NeedsLogin, ProviderUnavailable

if TYPE_CHECKING:
    from playwright.async_api import Page, Response

log = get_logger("errand.browser")

# Painted over (Playwright's mask, #FF00FF) in every screenshot: every field a person types into
# or a site pre-fills, so the traveler's name, email, phone or passport never reach a snapshot
# through a form. Search fields go too, for one rule without exceptions: the job's own params
# say what was searched.
MASKED_FIELDS = ("input:not([type=hidden]):not([type=submit]):not([type=button]):not([type=reset])"
                 ":not([type=checkbox]):not([type=radio]):not([type=image]), textarea, select")


class Visit:
    """One page of one provider's site, followed from page to page."""

    def __init__(self, provider_id: str, page: Page, timeout_seconds: float) -> None:
        self.provider_id = provider_id
        self.page = page
        self.timeout_ms = timeout_seconds * 1000
        self.marker = ""
        self.status = 0

    # --- moving ---------------------------------------------------------------------

    async def open(self, url: str) -> str:
        try:
            response = await self.page.goto(url, wait_until="domcontentloaded", timeout=self.timeout_ms)
        except PlaywrightError as exc:
            raise self._unreachable(exc) from None
        return await self.arrive(response)

    async def submit(self, button: str) -> str:
        """Click a form's submit button and follow the POST (and its redirect) to the next page.

        Raises :class:`CardFieldRefused` for a button whose form has card fields: paying is the end user's act.
        """
        target = self.page.locator(button).first
        try:
            pays = await submits_payment(target, self.timeout_ms)
        except PlaywrightError as exc:
            raise self._unreachable(exc) from None
        if pays:
            raise CardFieldRefused(f"{self.provider_id}: refusing to submit a payment form ({button})")
        try:
            async with self.page.expect_navigation(wait_until="domcontentloaded", timeout=self.timeout_ms) as nav:
                await target.click(timeout=self.timeout_ms)
            response = await nav.value
        except PlaywrightError as exc:
            raise self._unreachable(exc) from None
        return await self.arrive(response)

    async def arrive(self, response: Response | None) -> str:
        """Read where we are, keep a screenshot, and raise what the page means for the job."""
        self.status = response.status if response is not None else 0
        try:
            self.marker = await self.page.get_attribute("main[data-page]", "data-page", timeout=2000) or ""
        except PlaywrightError:
            self.marker = ""
        await self.snapshot(self.marker or f"http-{self.status}")
        await self._refuse_dead_end()
        return self.marker

    async def _refuse_dead_end(self) -> None:
        """Raise what the page reached means when the job cannot go on from it (see the module doc)."""
        if self.status >= 500 or self.status == 429 or self.marker == "error":
            raise ProviderUnavailable(self.provider_id, f"the site answered {self.status} at {self._path()}")
        if not self.marker:
            raise ProviderUnavailable(self.provider_id, f"unrecognised page ({self.status}) at {self._path()}")
        if self.marker == "login-wall":
            raise NeedsLogin(self.provider_id, "the site asks to sign in before checkout",
                             session_url=await self.takeover_link())
        if self.marker == "captcha":
            raise CaptchaRequired(self.provider_id, "the site put up a CAPTCHA before checkout",
                                  session_url=await self.takeover_link())

    def _unreachable(self, exc: PlaywrightError) -> ProviderUnavailable:
        first = (exc.message or type(exc).__name__).splitlines()[0]
        if "Timeout" in type(exc).__name__ or "Timeout" in first:
            return ProviderUnavailable(self.provider_id, f"the site did not answer within {self.timeout_ms / 1000:g} s")
        return ProviderUnavailable(self.provider_id, f"the site cannot be reached ({first[:160]})")

    def _path(self) -> str:
        return self.page.url.split("?", 1)[0]

    # --- reading --------------------------------------------------------------------

    async def takeover_link(self) -> str | None:
        link = self.page.locator("a#takeover")
        try:
            if await link.count() == 0:
                return None
            return await link.first.get_attribute("href", timeout=2000)
        except PlaywrightError:
            return None

    async def attribute(self, selector: str, name: str) -> str | None:
        locator = self.page.locator(selector)
        if await locator.count() == 0:
            return None
        return await locator.first.get_attribute(name, timeout=self.timeout_ms)

    async def text(self, selector: str) -> str | None:
        locator = self.page.locator(selector)
        if await locator.count() == 0:
            return None
        return (await locator.first.inner_text(timeout=self.timeout_ms)).strip()

    async def datasets(self, selector: str) -> list[dict[str, str]]:
        """The ``data-*`` attributes of every element matching ``selector``, as the DOM's dataset.

        Each also carries what a reader sees of it: ``_text`` (its text) and ``_heading`` (its
        first heading's text), for what the sites show without an attribute.
        """
        return await self.page.eval_on_selector_all(selector, """els => els.map(e => ({
            ...e.dataset, _text: (e.innerText || '').trim(),
            _heading: ((e.querySelector('h1, h2, h3') || {}).innerText || '').trim()}))""")

    async def form_errors(self) -> list[str]:
        return [t.strip() for t in await self.page.locator("#form-errors li").all_inner_texts() if t.strip()]

    # --- acting ---------------------------------------------------------------------

    async def fill(self, form: str, values: dict[str, Any]) -> None:
        """Type ``values`` into the named fields of ``form``; absent optional fields are skipped.

        Raises :class:`CardFieldRefused` before touching a card field, whatever asked for it.
        """
        for name, value in values.items():
            if value is None:
                continue
            field = self.page.locator(f'{form} [name="{name}"]')
            if await field.count() == 0:
                continue
            element_id = await field.first.get_attribute("id") or ""
            autocomplete = await field.first.get_attribute("autocomplete") or ""
            if is_card_field(name, element_id, autocomplete):
                raise CardFieldRefused(f"{self.provider_id}: refusing to type into card field {name!r}")
            try:
                await field.first.fill(str(value), timeout=self.timeout_ms)
            except PlaywrightError as exc:
                raise self._unreachable(exc) from None

    async def assert_card_fields_untouched(self) -> None:
        filled = await filled_card_fields(self.page)
        if filled:
            raise CardFieldRefused(f"{self.provider_id}: card fields {filled} are not empty at the payment page")

    async def snapshot(self, label: str) -> None:
        """Keep a screenshot of the page, its form fields masked (:data:`MASKED_FIELDS`), through the job's sink.

        Nothing happens outside a job (no sink); a screenshot that fails is logged and skipped.
        """
        sink = snapshot_sink.get()
        if sink is None:
            return
        try:
            png = await self.page.screenshot(type="png", timeout=self.timeout_ms, animations="disabled",
                                             mask=[self.page.locator(MASKED_FIELDS)])
        except PlaywrightError as exc:
            log.info("snapshot_failed", provider_id=self.provider_id, error=exc.message.splitlines()[0])
            return
        await sink(f"{self.provider_id}/{label}", self.page.url, png)
