"""The four booking web sites, driven with plain form posts: search → results → details → checkout → paid.

Each test books on Wednesdays of its own (see ``wednesday``) so that tests of this module
never share inventory.
"""


import httpx
import pytest
from sqlalchemy import func, select

from errand.kit.db import Database
from errand.models.sandbox_booking import SandboxBooking, SandboxSlot
from tests.sandbox.api_support import credentials
from tests.sandbox.conftest import SETTINGS
from tests.sandbox.web_support import (
    DECLINED_CARD,
    DETAILS_FORMS,
    EMAIL_INPUT_IDS,
    SEARCH_FORMS,
    SITES,
    TEST_CARD,
    VENUES,
    Visitor,
    details_fields,
    wednesday,
)


async def booking_of(db: Database, hold_id: str) -> SandboxBooking:
    async with db.unit_of_work(read_only=True) as session:
        return (await session.execute(select(SandboxBooking).where(SandboxBooking.id == hold_id))).scalar_one()


async def taken(db: Database, venue_id: str, unit: str) -> int:
    async with db.unit_of_work(read_only=True) as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(SandboxSlot.taken), 0)).where(
                SandboxSlot.venue_id == venue_id, SandboxSlot.unit == unit
            )
        )
    return int(total or 0)


@pytest.mark.parametrize("site", SITES)
async def test_the_full_path_books_and_takes_inventory(site: str, visitor: Visitor, db: Database) -> None:
    home = await visitor.get(visitor.site_url(site))
    assert home.kind == "search" and home.main["data-site"] == site
    assert home.has(id=SEARCH_FORMS[site])

    results = await visitor.search(site, VENUES[site]["normal"], wednesday(1))
    assert results.kind == "results" and "/s/" in results.url
    offers = results.offers(site)
    assert offers and all(int(o["data-total-usd"]) > 0 for o in offers)
    assert results.all("button", type="submit")

    details = await visitor.choose(results, offers[0]["data-offer"])
    assert details.kind == "details"
    assert details.one("section", id="selection")["data-offer"] == offers[0]["data-offer"]
    assert details.has(id=DETAILS_FORMS[site]) and details.has(id="reference", name="reference")

    checkout = await visitor.details(details, site, details_fields(site))
    assert checkout.kind == "checkout"
    assert checkout.response.history and checkout.response.history[-1].status_code == 303
    assert checkout.url == checkout.main["data-handoff-url"] and f"/web/{site}/checkout/" in checkout.url
    summary = checkout.one("section", id="hold-summary")
    assert summary["data-status"] == "held" and summary["data-expires-at"]
    assert summary["data-total-usd"] == offers[0]["data-total-usd"]
    for card_field in ("card-number", "card-expiry", "card-cvc", "pay"):
        assert checkout.has(id=card_field)

    hold = await booking_of(db, summary["data-hold-id"])
    assert hold.status == "held" and hold.provider_id == site
    before = await taken(db, hold.venue_id, hold.unit)
    assert before >= sum(hold.slots.values())

    paid = await visitor.pay(checkout, TEST_CARD)
    assert paid.kind == "confirmation" and paid.url == checkout.url
    confirmation = paid.text_of("confirmation-number")
    assert confirmation.startswith("SBX-")
    hold = await booking_of(db, hold.id)
    assert hold.status == "booked" and hold.confirmation == confirmation
    assert await taken(db, hold.venue_id, hold.unit) == before
    # The handoff URL keeps showing the confirmation, in any browser.
    async with httpx.AsyncClient(timeout=30) as other:
        again = await other.get(checkout.url)
    assert again.status_code == 200 and confirmation in again.text and 'data-page="confirmation"' in again.text


@pytest.mark.parametrize("site", SITES)
async def test_a_declined_card_keeps_the_hold(site: str, visitor: Visitor, db: Database) -> None:
    checkout = await visitor.to_checkout(site, VENUES[site]["normal"], wednesday(2))
    declined = await visitor.pay(checkout, DECLINED_CARD)
    assert declined.status == 402 and declined.kind == "checkout"
    assert declined.one(id="payment-error")["data-reason"] == "declined"
    hold_id = checkout.one(id="hold-summary")["data-hold-id"]
    assert (await booking_of(db, hold_id)).status == "held"
    other_number = await visitor.pay(checkout, {**TEST_CARD, "card_number": "5555 5555 5555 4444"})
    assert other_number.status == 402 and "5555" not in other_number.text
    assert (await visitor.pay(checkout, TEST_CARD)).kind == "confirmation"


async def test_malformed_card_fields_are_explained_and_never_echoed(visitor: Visitor) -> None:
    checkout = await visitor.to_checkout("web-tables", "Le Bernardin", wednesday(3))
    bad = await visitor.pay(checkout, {"card_number": "4242 4242", "expiry": "13/30", "cvc": "98"})
    assert bad.status == 400 and bad.kind == "checkout"
    assert bad.one(id="payment-error")["data-reason"] == "invalid"
    for field_id in ("card-number", "card-expiry", "card-cvc"):
        assert bad.one("input", id=field_id).get("aria-invalid") == "true" and bad.has(id=f"{field_id}-error")
    assert "4242 4242\"" not in bad.text and 'value="' not in bad.text.split('id="payment-form"')[1]


@pytest.mark.parametrize("site", SITES)
async def test_a_bad_email_is_refused_with_a_message(site: str, visitor: Visitor) -> None:
    details = await visitor.to_details(site, VENUES[site]["normal"], wednesday(4))
    refused = await visitor.details(details, site, details_fields(site, email="ada-at-example"))
    assert refused.status == 400 and refused.kind == "details"
    email_id = EMAIL_INPUT_IDS[site]
    assert refused.one("input", id=email_id)["aria-invalid"] == "true"
    assert refused.text_of(f"{email_id}-error") == "Enter a valid email address."
    assert refused.one("li", data_field=refused.one("input", id=email_id)["name"])
    # What was typed stays in the form.
    assert refused.one("input", id=email_id)["value"] == "ada-at-example"


async def test_flight_travelers_need_passport_details(visitor: Visitor) -> None:
    details = await visitor.to_details("web-air", VENUES["web-air"]["normal"], wednesday(4))
    refused = await visitor.details(details, "web-air", details_fields(
        "web-air", dob="10/12/1990", passport_number="12", passport_country="Britain",
    ))
    assert refused.status == 400
    assert {li["data-field"] for li in refused.all("li") if "data-field" in li} == {
        "date_of_birth", "passport_number", "passport_country",
    }


async def test_a_search_with_problems_is_explained(visitor: Visitor) -> None:
    home = await visitor.get(visitor.site_url("web-stays"))
    refused = await visitor.post(home, "hotel-search", {
        "hotel": "", "check_in": "2027-02-10", "check_out": "2027-02-09", "adults": "0",
    })
    assert refused.status == 400 and refused.kind == "search"
    assert {li["data-field"] for li in refused.all("li") if "data-field" in li} == {"hotel", "check_out", "adults"}


async def test_unknown_venues_and_empty_searches_say_why(visitor: Visitor) -> None:
    unknown = await visitor.search("web-tables", "Nowhere Bistro", wednesday(5))
    assert unknown.kind == "no-results" and unknown.main["data-reason"] == "unknown-venue"
    too_many = await visitor.search("web-stays", "The Plaza", wednesday(5), quantity=9)
    assert too_many.kind == "no-results" and too_many.main["data-reason"] == "none-available"


async def test_web_providers_have_no_job_api(web_url: str) -> None:
    async with httpx.AsyncClient(base_url=web_url, timeout=30, auth=credentials(SETTINGS)) as client:
        search = await client.post("/api/web-tables/search", json={
            "scenario": "restaurant", "venue": "Carbone", "date": wednesday(6), "quantity": 2,
        })
        assert search.status_code == 404 and search.json()["error"] == "not_found"
        api_site = await client.get("/web/sandbox-tables/")
        assert api_site.status_code == 404 and 'data-page="not-found"' in api_site.text


async def test_an_unknown_session_or_checkout_is_a_page_not_json(visitor: Visitor, web_url: str) -> None:
    gone = await visitor.get(f"{web_url}/web/web-tables/s/not-a-session/results")
    assert gone.status == 410 and gone.kind == "session-expired"
    missing = await visitor.get(f"{web_url}/web/web-tables/checkout/not-a-token")
    assert missing.status == 404 and missing.kind == "not-found"


async def test_a_search_for_year_9999_is_explained_not_sold(visitor: Visitor) -> None:
    home = await visitor.get(visitor.site_url("web-stays"))
    refused = await visitor.post(home, "hotel-search", {
        "hotel": "The Plaza", "check_in": "9999-02-10", "check_out": "9999-02-11", "adults": "2",
    })
    assert refused.status == 400 and refused.kind == "search"
    assert "check_in" in {li["data-field"] for li in refused.all("li") if "data-field" in li}


async def test_a_form_field_with_a_nul_is_refused_before_the_site_reads_it(visitor: Visitor) -> None:
    home = await visitor.get(visitor.site_url("web-tables"))
    form = home.one("form", id="find-table")
    response = await visitor.client.post(form["action"], data={"restaurant": "Chez\x00Janou"})
    assert response.status_code == 400
    assert "\x00" not in response.text
