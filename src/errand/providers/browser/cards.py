"""What a card field is, so that the autopilot never types into one nor submits a payment form.

A field is a card field by its name (:data:`CARD_FIELD_NAMES`), an id starting ``card-``, or
``autocomplete="cc-…"``. Paying is the end user's act: a browser adapter that meets one is a
bug (:class:`CardFieldRefused`), never an outcome of the job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

CARD_FIELD_NAMES = frozenset({"card_number", "cardnumber", "card", "expiry", "card_expiry", "exp", "exp_date",
                              "cvc", "cvv", "card_cvc", "security_code"})
_CARD_FIELDS_JS = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => (e.autocomplete || '').startsWith('cc-') || e.id.startsWith('card-')
               || %s.includes((e.name || '').toLowerCase()))
  .map(e => ({name: e.name, value: e.value}))""" % sorted(CARD_FIELD_NAMES)


_PAYS_JS = """b => !!b.form && [...b.form.elements].some(e => (e.autocomplete || '').startsWith('cc-')
  || (e.id || '').startsWith('card-') || %s.includes((e.name || '').toLowerCase()))""" % sorted(CARD_FIELD_NAMES)


class CardFieldRefused(AssertionError):
    """The autopilot was about to type into a card field: a bug, never an outcome."""


def is_card_field(name: str, element_id: str = "", autocomplete: str = "") -> bool:
    return (name.lower() in CARD_FIELD_NAMES or element_id.startswith("card-")
            or autocomplete.lower().startswith("cc-"))


async def submits_payment(button: Locator, timeout_ms: float) -> bool:
    """Whether ``button``'s form has a card field (so submitting it would pay)."""
    return bool(await button.evaluate(_PAYS_JS, timeout=timeout_ms))


async def filled_card_fields(page: Page) -> list[str]:
    """The names of the page's card fields that hold a value."""
    return [f["name"] for f in await page.evaluate(_CARD_FIELDS_JS) if f.get("value")]
