"""Driving the sandbox web sites over plain HTTP, as a browser would post their forms.

Field names, ids and ``data-*`` attributes here are written out from docs/sandbox-web.md on
purpose (not imported from the sites' code): these tests check the contract the browser
autopilot relies on.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx

PROFILE = {
    "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+1 212 555 0100",
    "dob": "1990-12-10", "passport_number": "X1234567", "passport_country": "GB",
}
TEST_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/35", "cvc": "123"}
DECLINED_CARD = {**TEST_CARD, "card_number": "4000 0000 0000 0002"}

# Per site: the search form's id and a search builder, the details form's id, the details
# field names by profile key, and the name and id of its email field.
SEARCH_FORMS = {"web-tables": "find-table", "web-stays": "hotel-search", "web-air": "flight-search",
                "web-tickets": "ticket-search"}
DETAILS_FORMS = {"web-tables": "guest-details", "web-stays": "guest-form", "web-air": "traveler-form",
                 "web-tickets": "buyer-details"}
DETAILS_FIELDS = {
    "web-tables": {"first_name": "first_name", "last_name": "last_name", "email": "email", "phone": "phone"},
    "web-stays": {"first_name": "given_name", "last_name": "family_name", "email": "email_address",
                  "phone": "phone_number"},
    "web-air": {"first_name": "traveler_first_name", "last_name": "traveler_last_name", "email": "contact_email",
                "phone": "contact_phone", "dob": "date_of_birth", "passport_number": "passport_number",
                "passport_country": "passport_country"},
    "web-tickets": {"email": "email", "phone": "mobile"},
}
EMAIL_INPUT_IDS = {"web-tables": "email", "web-stays": "email-address", "web-air": "contact-email",
                   "web-tickets": "buyer-email"}
OFFER_ITEMS = {"web-tables": ("li", "slot"), "web-stays": ("tr", "room"), "web-air": ("li", "fare"),
               "web-tickets": ("article", "seat-type")}
# Deterministic test venues (docs/sandbox-web.md): normal, login wall, CAPTCHA, sold out while typing.
VENUES: dict[str, dict[str, Any]] = {
    "web-tables": {"normal": "Carbone", "login": "Katz's Delicatessen", "captcha": "Eleven Madison Park",
                   "login_everywhere": "Tatiana", "captcha_everywhere": "Peter Luger", "sold_out": "Via Carota"},
    "web-stays": {"normal": "The Plaza", "login": "Hotel Emblem", "captcha": "Palace Hotel",
                  "login_everywhere": "Pod 51", "captcha_everywhere": "The Greenwich Hotel",
                  "sold_out": "Fairmont San Francisco"},
    "web-air": {"normal": ("New York", "San Francisco"), "login": ("New York", "London"),
                "captcha": ("New York", "Paris"), "login_everywhere": ("Tokyo", "Paris"),
                "captcha_everywhere": ("San Francisco", "Tokyo"), "sold_out": ("New York", "Chicago")},
    "web-tickets": {"normal": "Hamilton", "login": "Les Miserables", "captcha": "The Mousetrap",
                    "login_everywhere": "New York Philharmonic", "captcha_everywhere": "Knicks vs Celtics",
                    "sold_out": "Beach Blanket Babylon Revival"},
}
SITES = tuple(VENUES)


def wednesday(n: int) -> str:
    """The n-th Wednesday from January 2027: every test venue sells on Wednesdays."""
    return (date(2027, 1, 6) + timedelta(weeks=n)).isoformat()


def search_fields(site: str, venue: Any, day: str, quantity: int = 2) -> dict[str, str]:
    if site == "web-tables":
        return {"restaurant": venue, "date": day, "party_size": str(quantity)}
    if site == "web-stays":
        checkout = (date.fromisoformat(day) + timedelta(days=2)).isoformat()
        return {"hotel": venue, "check_in": day, "check_out": checkout, "adults": str(quantity)}
    if site == "web-air":
        return {"from": venue[0], "to": venue[1], "departure_date": day, "passengers": str(quantity)}
    return {"event": venue, "date": day, "quantity": str(quantity)}


def details_fields(site: str, reference: str | None = None, **overrides: str) -> dict[str, str]:
    profile = {**PROFILE, **overrides}
    fields = {name: profile[key] for key, name in DETAILS_FIELDS[site].items()}
    if site == "web-tickets":
        fields["full_name"] = f"{profile['first_name']} {profile['last_name']}"
    if reference is not None:
        fields["reference"] = reference
    return fields


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


@dataclass
class Page:
    response: httpx.Response

    def __post_init__(self) -> None:
        parser = _Tags()
        parser.feed(self.response.text)
        self.tags = parser.tags
        mains = [a for t, a in self.tags if t == "main"]
        assert len(mains) == 1, "every page has exactly one <main>"
        self.main = mains[0]

    @property
    def kind(self) -> str:
        return self.main["data-page"]

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def url(self) -> str:
        return str(self.response.url)

    @property
    def text(self) -> str:
        return self.response.text

    def all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[dict[str, str]]:
        wanted = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [
            a for t, a in self.tags
            if (tag is None or t == tag) and (cls is None or cls in a.get("class", "").split())
            and all(a.get(k) == v for k, v in wanted.items())
        ]

    def one(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> dict[str, str]:
        found = self.all(tag, cls, **attrs)
        assert len(found) == 1, f"expected one {tag or ''}.{cls or ''}{attrs}, found {len(found)}"
        return found[0]

    def has(self, **attrs: str) -> bool:
        return bool(self.all(**attrs))

    def text_of(self, id_: str) -> str:
        match = re.search(rf'id="{re.escape(id_)}"[^>]*>(.*?)</', self.text, re.S)
        assert match, f"no #{id_}"
        return re.sub(r"<[^>]+>", "", match.group(1)).strip()

    def offers(self, site: str) -> list[dict[str, str]]:
        tag, cls = OFFER_ITEMS[site]
        return self.all(tag, cls)


class Visitor:
    """One browser: follows redirects, posts forms by their ids."""

    def __init__(self, client: httpx.AsyncClient, sandbox_url: str) -> None:
        self.client = client
        self.sandbox_url = sandbox_url

    def site_url(self, site: str) -> str:
        return f"{self.sandbox_url}/web/{site}/"

    async def get(self, url: str) -> Page:
        return Page(await self.client.get(url))

    async def post(self, page: Page, form_id: str, data: dict[str, str]) -> Page:
        form = page.one("form", id=form_id)
        return Page(await self.client.post(form["action"], data=data))

    async def search(self, site: str, venue: Any, day: str, quantity: int = 2) -> Page:
        home = await self.get(self.site_url(site))
        assert home.kind == "search", home.text
        return await self.post(home, SEARCH_FORMS[site], search_fields(site, venue, day, quantity))

    async def choose(self, results: Page, offer: str) -> Page:
        action = next(a["action"] for t, a in results.tags if t == "form" and a["action"].endswith("/select"))
        return Page(await self.client.post(action, data={"offer": offer}))

    async def details(self, page: Page, site: str, data: dict[str, str]) -> Page:
        return await self.post(page, DETAILS_FORMS[site], data)

    async def to_details(self, site: str, venue: Any, day: str, quantity: int = 2, index: int = 0) -> Page:
        results = await self.search(site, venue, day, quantity)
        assert results.kind == "results", results.text
        page = await self.choose(results, results.offers(site)[index]["data-offer"])
        assert page.kind == "details", page.text
        return page

    async def to_checkout(self, site: str, venue: Any, day: str, reference: str | None = None,
                          quantity: int = 2) -> Page:
        details = await self.to_details(site, venue, day, quantity)
        page = await self.details(details, site, details_fields(site, reference))
        assert page.kind == "checkout", page.text
        return page

    async def pay(self, checkout: Page, card: dict[str, str]) -> Page:
        return await self.post(checkout, "payment-form", card)


def expected_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The Standard Webhooks v1 signature, computed independently of the code under test."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def events_json(inbox: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(received.body) for received in inbox]


async def wait_for(inbox: list[Any], matches: Callable[[dict[str, Any]], bool]) -> Any:
    """The first provider event the fake Errand received that ``matches``; bounded wait."""
    for _ in range(500):
        for received in inbox:
            if matches(json.loads(received.body)):
                return received
        await asyncio.sleep(0.01)
    raise AssertionError(f"no such provider event among {events_json(inbox)}")
