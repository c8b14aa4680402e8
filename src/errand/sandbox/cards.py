"""Card fields as a payment page receives them: validated, compared, dropped.

Only the sandbox's checkout pages call this. The number is returned to the caller for one
comparison with the test card and never stored, logged or echoed back into a page; expiry
and CVC are checked for shape and then forgotten.
"""

import re
from urllib.parse import parse_qs

from errand.kit import clock

# The form fields of every checkout page, and the messages their problems show.
FIELDS = ("card_number", "expiry", "cvc")


def read_form(body: bytes) -> dict[str, list[str]] | None:
    """A urlencoded form body, or None when it is not valid UTF-8."""
    try:
        return parse_qs(body.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def card_number(form: dict[str, list[str]]) -> tuple[str | None, dict[str, str]]:
    """The card number if every field is well formed, else the problems by field; nothing else is kept."""
    def field(name: str) -> str:
        return (form.get(name) or [""])[0].strip()

    problems: dict[str, str] = {}
    number = re.sub(r"[\s-]", "", field("card_number"))
    if not re.fullmatch(r"\d{12,19}", number):
        problems["card_number"] = "Enter the card number (12 to 19 digits)."
    expiry = re.fullmatch(r"(\d{2})\s*/\s*(\d{2}|\d{4})", field("expiry"))
    if expiry is None or not 1 <= int(expiry.group(1)) <= 12:
        problems["expiry"] = "Enter the expiry as MM/YY."
    else:
        month, year = int(expiry.group(1)), int(expiry.group(2))
        year += 2000 if year < 100 else 0
        today = clock.now()
        if (year, month) < (today.year, today.month):
            problems["expiry"] = "The card has expired."
    if not re.fullmatch(r"\d{3,4}", field("cvc")):
        problems["cvc"] = "Enter the 3 or 4 digit security code."
    return (None if problems else number), problems
