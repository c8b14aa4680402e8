"""The four booking web sites: what each one's forms ask and how it words and lays things out.

One :class:`Site` per web-only provider. They share one flow and one checkout page, and
differ the way real sites do: field names, ids, labels, the shape of the results list
(docs/sandbox-web.md is the contract). Each input carries the canonical ``key`` the flow
reads (``venue``, ``date``, ``quantity``…; ``first_name``, ``email``…), so the flow never
looks at a site's own names.

Validation happens here, server side, with the messages a visitor sees next to each field.
"""

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from errand.kit import clock, limits
from errand.sandbox.hotels import MAX_NIGHTS

# A reference is the caller's idempotency key for the hold: printable, no spaces.
REFERENCE = re.compile(r"[!-~]{1,128}")
RESERVED_REFERENCE_PREFIX = "web-session:"


@dataclass(frozen=True)
class Input:
    name: str
    id: str
    label: str
    key: str
    type: str = "text"
    required: bool = True
    autocomplete: str = ""


@dataclass(frozen=True)
class Listing:
    """How a site lists its offers: container, item, per-item attributes and button."""

    container: str  # "ul", "table", "ol", "div"
    container_id: str
    item_tag: str
    item_class: str
    button_class: str


@dataclass(frozen=True)
class Site:
    provider_id: str
    scenario: str
    brand: str
    tagline: str
    accent: str
    font: str
    search_form_id: str
    search_inputs: tuple[Input, ...]
    search_button_id: str
    search_button: str
    listing: Listing
    details_form_id: str
    details_inputs: tuple[Input, ...]
    details_button_id: str
    details_button: str


_REFERENCE_INPUT = Input("reference", "reference", "Booking reference (optional)", "reference", required=False)


def _details(*inputs: Input) -> tuple[Input, ...]:
    return (*inputs, _REFERENCE_INPUT)


SITES: dict[str, Site] = {
    site.provider_id: site for site in (
        Site(
            provider_id="web-tables", scenario="restaurant", brand="Web Tables",
            tagline="Tables at New York's best restaurants, tonight or any night.", accent="#b0302a",
            font="Georgia, serif", search_form_id="find-table",
            search_inputs=(
                Input("restaurant", "restaurant", "Restaurant", "venue"),
                Input("city", "city", "City", "city", required=False),
                Input("date", "date", "Date", "date", type="date"),
                Input("party_size", "party-size", "Party size", "quantity", type="number"),
            ),
            search_button_id="find-table-submit", search_button="Find a table",
            listing=Listing("ul", "slots", "li", "slot", "book-slot"),
            details_form_id="guest-details",
            details_inputs=_details(
                Input("first_name", "first-name", "First name", "first_name", autocomplete="given-name"),
                Input("last_name", "last-name", "Last name", "last_name", autocomplete="family-name"),
                Input("email", "email", "Email", "email", type="email", autocomplete="email"),
                Input("phone", "phone", "Phone (optional)", "phone", type="tel", required=False, autocomplete="tel"),
            ),
            details_button_id="complete-reservation", details_button="Complete reservation",
        ),
        Site(
            provider_id="web-stays", scenario="hotel", brand="Web Stays",
            tagline="Hotel rooms in six cities, best rate guaranteed (in the sandbox).", accent="#1f5fa8",
            font="Helvetica, Arial, sans-serif", search_form_id="hotel-search",
            search_inputs=(
                Input("hotel", "hotel", "Hotel", "venue"),
                Input("city", "city", "City", "city", required=False),
                Input("check_in", "check-in", "Check-in", "date", type="date"),
                Input("check_out", "check-out", "Check-out", "end_date", type="date"),
                Input("adults", "adults", "Adults", "quantity", type="number"),
            ),
            search_button_id="search-rooms", search_button="Search rooms",
            listing=Listing("table", "rooms", "tr", "room", "reserve-room"),
            details_form_id="guest-form",
            details_inputs=_details(
                Input("given_name", "given-name", "Given name", "first_name", autocomplete="given-name"),
                Input("family_name", "family-name", "Family name", "last_name", autocomplete="family-name"),
                Input("email_address", "email-address", "Email address", "email", type="email", autocomplete="email"),
                Input("phone_number", "phone-number", "Phone number", "phone", type="tel", autocomplete="tel"),
            ),
            details_button_id="continue-to-payment", details_button="Continue to payment",
        ),
        Site(
            provider_id="web-air", scenario="flight", brand="Web Air",
            tagline="Fares on every route between six cities.", accent="#0b7a5c",
            font="Verdana, sans-serif", search_form_id="flight-search",
            search_inputs=(
                Input("from", "from", "From (city or airport)", "origin"),
                Input("to", "to", "To (city or airport)", "dest"),
                Input("departure_date", "departure-date", "Departure date", "date", type="date"),
                Input("passengers", "passengers", "Passengers", "quantity", type="number"),
            ),
            search_button_id="search-flights", search_button="Search flights",
            listing=Listing("ol", "fares", "li", "fare", "select-fare"),
            details_form_id="traveler-form",
            details_inputs=_details(
                Input("traveler_first_name", "traveler-first-name", "First name (as on passport)", "first_name"),
                Input("traveler_last_name", "traveler-last-name", "Last name (as on passport)", "last_name"),
                Input("contact_email", "contact-email", "Contact email", "email", type="email"),
                Input("contact_phone", "contact-phone", "Contact phone (optional)", "phone", type="tel",
                      required=False),
                Input("date_of_birth", "date-of-birth", "Date of birth", "dob", type="date"),
                Input("passport_number", "passport-number", "Passport number", "passport_number"),
                Input("passport_country", "passport-country", "Passport country (2-letter code)", "passport_country"),
            ),
            details_button_id="continue", details_button="Continue",
        ),
        Site(
            provider_id="web-tickets", scenario="activity", brand="Web Tickets",
            tagline="Shows, concerts and games. No booking fees, ever (it's a sandbox).", accent="#6b2fa3",
            font="Trebuchet MS, sans-serif", search_form_id="ticket-search",
            search_inputs=(
                Input("event", "event", "Event", "venue"),
                Input("city", "city", "City", "city", required=False),
                Input("date", "event-date", "Date", "date", type="date"),
                Input("quantity", "quantity", "Tickets", "quantity", type="number"),
            ),
            search_button_id="find-tickets", search_button="Find tickets",
            listing=Listing("div", "seat-types", "article", "seat-type", "buy-tickets"),
            details_form_id="buyer-details",
            details_inputs=_details(
                Input("full_name", "full-name", "Full name", "full_name", autocomplete="name"),
                Input("email", "buyer-email", "Email", "email", type="email", autocomplete="email"),
                Input("mobile", "mobile", "Mobile (optional)", "phone", type="tel", required=False),
            ),
            details_button_id="buy-now", details_button="Buy now",
        ),
    )
}


def first(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()


def _day(value: str) -> date | None:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


_MISSING_SEARCH = {
    "origin": "Enter where you fly from.", "dest": "Enter where you fly to.",
    "date": "Enter the date as YYYY-MM-DD.", "end_date": "Enter the check-out date as YYYY-MM-DD.",
    "quantity": "Enter how many.",
}


def read_search(site: Site, form: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The search by canonical key (values as typed) and the problems by form field name."""
    values = {i.key: first(form, i.name)[:200] for i in site.search_inputs}
    problems: dict[str, str] = {}
    names = {i.key: i for i in site.search_inputs}
    for key, inp in names.items():
        if inp.required and not values[key]:
            problems[inp.name] = _MISSING_SEARCH.get(key, f"Enter the {inp.label.lower()}.")
    # Errand's booking dates (errand.kit.limits): a day back from UTC covers every venue's local
    # today, and nothing is sold past the booking horizon.
    day = _day(values["date"]) if values["date"] else None
    if values["date"] and (day is None or limits.date_problem(day) is not None):
        problems[names["date"].name] = (f"Enter a date from today on, at most {limits.BOOKING_HORIZON_DAYS} days "
                                        "ahead, as YYYY-MM-DD.")
    if "end_date" in names and values["end_date"]:
        end = _day(values["end_date"])
        if end is None or (day is not None and not 0 < (end - day).days <= MAX_NIGHTS):
            problems[names["end_date"].name] = f"Check-out must be 1 to {MAX_NIGHTS} nights after check-in."
    quantity, most = values["quantity"], limits.QUANTITY_MAX[site.scenario]  # what Errand asks for at most
    if quantity and (not quantity.isdigit() or not 1 <= int(quantity) <= most):
        problems[names["quantity"].name] = f"Enter a number from 1 to {most}."
    return values, problems


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?[0-9 ().\-/]{7,24}")
_PASSPORT = re.compile(r"[A-Za-z0-9]{6,9}")


def _problem(key: str, value: str, required: bool) -> str | None:
    """The message for one details field, or None when it is acceptable."""
    if not value:
        return {
            "first_name": "Enter your first name.", "last_name": "Enter your last name.",
            "full_name": "Enter your full name.", "email": "Enter your email address.",
            "phone": "Enter a phone number.", "dob": "Enter the date of birth.",
            "passport_number": "Enter the passport number.", "passport_country": "Enter the passport country.",
        }.get(key) if required else None
    if key == "email" and not _EMAIL.fullmatch(value):
        return "Enter a valid email address."
    if key == "phone" and (not _PHONE.fullmatch(value) or sum(c.isdigit() for c in value) < 7):
        return "Enter a valid phone number (at least 7 digits)."
    if key == "full_name" and len(value.split()) < 2:
        return "Enter your first and last name."
    if key == "dob":
        born = _day(value)
        if born is None or not date(1900, 1, 1) <= born < clock.now().date():
            return "Enter the date of birth as YYYY-MM-DD."
    if key == "passport_number" and not _PASSPORT.fullmatch(value):
        return "Enter the passport number (6 to 9 letters or digits)."
    if key == "passport_country" and not re.fullmatch(r"[A-Za-z]{2}", value):
        return "Enter the passport country as a 2-letter code, e.g. US."
    if key == "reference" and (not REFERENCE.fullmatch(value) or value.startswith(RESERVED_REFERENCE_PREFIX)):
        return "A booking reference is 1 to 128 characters without spaces."
    return None


def read_details(site: Site, form: dict[str, list[str]]) -> tuple[dict[str, str], dict[str, str]]:
    """The details by canonical key and the problems by form field name."""
    values = {i.key: first(form, i.name)[:200] for i in site.details_inputs}
    problems = {
        i.name: message for i in site.details_inputs
        if (message := _problem(i.key, values[i.key], i.required)) is not None
    }
    return values, problems


def traveler(details: dict[str, str]) -> dict[str, str]:
    """The traveler as the inventory keeps it (first/last name, email, phone, passport)."""
    person = {k: v for k, v in details.items() if v and k != "reference"}
    if "full_name" in person:
        given, _, family = person.pop("full_name").partition(" ")
        person.update(first_name=given, last_name=family.strip())
    if "passport_country" in person:
        person["passport_country"] = person["passport_country"].upper()
    return person
