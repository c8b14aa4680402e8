"""Obstacles on the web sites (login wall, CAPTCHA, sold out while typing, injected faults) and
the one-time continue link that lets a person take a session over in another browser.
"""

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from errand.kit import webhooks
from tests.sandbox.conftest import Received, events_secret
from tests.sandbox.web_support import (
    wait_for,
    SITES,
    TEST_CARD,
    VENUES,
    Page,
    Visitor,
    details_fields,
    expected_signature,
    wednesday,
)


@pytest.fixture
async def person(web_url: str) -> AsyncIterator[Visitor]:
    """Another browser: no cookies, no history, only the link it was given."""
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as client:
        yield Visitor(client, web_url)


async def blocked(visitor: Visitor, site: str, obstacle: str, day: str, reference: str | None = None) -> Page:
    details = await visitor.to_details(site, VENUES[site][obstacle], day)
    page = await visitor.details(details, site, details_fields(site, reference))
    assert page.response.history and page.response.history[-1].status_code == 303
    return page


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("obstacle", ["login", "login_everywhere"])
async def test_a_login_wall_stops_after_the_details(site: str, obstacle: str, visitor: Visitor) -> None:
    wall = await blocked(visitor, site, obstacle, wednesday(10))
    assert wall.kind == "login-wall" and wall.url.endswith("/sign-in")
    assert wall.has(id="sign-in-form") and wall.has(id="username") and wall.has(id="password")
    link = wall.one("a", id="takeover")["href"]
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/sandbox/web/{site}/resume/[\w-]{{20,}}", link)
    assert not wall.has(id="sandbox-hint")


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("obstacle", ["captcha", "captcha_everywhere"])
async def test_a_captcha_stops_after_the_details(site: str, obstacle: str, visitor: Visitor) -> None:
    challenge = await blocked(visitor, site, obstacle, wednesday(11))
    assert challenge.kind == "captcha" and challenge.url.endswith("/verify")
    assert challenge.has(id="captcha-challenge") and challenge.has(id="captcha-answer")
    assert challenge.one("a", id="takeover")["href"].startswith("http://")
    assert not challenge.has(id="sandbox-hint")


@pytest.mark.parametrize("site", SITES)
async def test_the_first_choice_sells_out_while_typing(site: str, visitor: Visitor) -> None:
    details = await visitor.to_details(site, VENUES[site]["sold_out"], wednesday(12))
    gone_offer = details.one("section", id="selection")["data-offer"]
    sold_out = await visitor.details(details, site, details_fields(site))
    assert sold_out.status == 409 and sold_out.kind == "sold-out"
    results = await visitor.get(sold_out.one("a", id="back-to-results")["href"])
    assert results.kind == "results"
    remaining = [o["data-offer"] for o in results.offers(site)]
    assert gone_offer not in remaining and remaining
    second = await visitor.choose(results, remaining[0])
    checkout = await visitor.details(second, site, details_fields(site))
    assert checkout.kind == "checkout"


async def test_the_takeover_link_moves_the_session_once(
    visitor: Visitor, person: Visitor, inbox: list[Received]
) -> None:
    site, reference = "web-tables", f"job_takeover_{uuid.uuid4().hex}"
    wall = await blocked(visitor, site, "login_everywhere", wednesday(13), reference)
    link = wall.one("a", id="takeover")["href"]

    taken_over = await person.get(link)
    assert taken_over.kind == "login-wall" and taken_over.has(id="sandbox-hint")
    assert "sandbox" in taken_over.text_of("sandbox-hint") and not taken_over.has(id="takeover")
    # The autopilot's session has moved: its URLs no longer work.
    moved = await visitor.get(wall.url)
    assert moved.status == 410 and moved.kind == "session-expired"
    # The link works once.
    again = await person.get(link)
    assert again.status == 410 and again.kind == "takeover-used"

    event = await wait_for(inbox, lambda e: e["type"] == "human_takeover" and e["reference"] == reference)
    body = json.loads(event.body)
    assert body["provider_id"] == site and body["hold_id"] is None and body["confirmation"] is None
    assert event.headers["webhook-signature"] == expected_signature(events_secret(site), event.headers, event.body)

    wrong = await person.post(taken_over, "sign-in-form", {"username": "ada", "password": "guess"})
    assert wrong.status == 401 and wrong.kind == "login-wall" and wrong.has(id="form-errors")
    details = await person.post(wrong, "sign-in-form", {"username": "ada", "password": "sandbox"})
    assert details.kind == "details" and details.has(id="notice")
    # Venue, time, party and the filled details are all still there.
    assert details.one("input", id="first-name")["value"] == "Ada"
    assert details.one("input", id="email")["value"] == "ada@example.com"
    assert details.one("input", id="reference")["value"] == reference
    assert "Tatiana" in details.text and details.one("section", id="selection")["data-offer"]

    form = {i["name"]: i.get("value", "") for i in details.all("input") if i.get("name")}
    checkout = await person.details(details, site, form)
    assert checkout.kind == "checkout"
    paid = await person.pay(checkout, TEST_CARD)
    assert paid.kind == "confirmation"
    confirmation = paid.text_of("confirmation-number")
    event = await wait_for(inbox, lambda e: e["type"] == "payment_completed" and e["reference"] == reference)
    body = json.loads(event.body)
    assert body["confirmation"] == confirmation and body["hold_id"] == checkout.one(id="hold-summary")["data-hold-id"]
    assert webhooks.verify(events_secret(site), event.headers, event.body) == f"pev_payment_completed_{body['hold_id']}"


async def test_a_person_solves_the_captcha_with_the_hint(visitor: Visitor, person: Visitor) -> None:
    site = "web-tickets"
    challenge = await blocked(visitor, site, "captcha_everywhere", wednesday(14), "job_takeover_captcha_1")
    taken_over = await person.get(challenge.one("a", id="takeover")["href"])
    assert taken_over.kind == "captcha"
    wrong = await person.post(taken_over, "captcha-form", {"captcha_answer": "nope"})
    assert wrong.status == 403 and wrong.kind == "captcha"
    answer = re.search(r"the answer is (\w+)", wrong.text_of("sandbox-hint")).group(1)  # type: ignore[union-attr]
    details = await person.post(wrong, "captcha-form", {"captcha_answer": answer.lower()})
    assert details.kind == "details" and details.one("input", id="full-name")["value"] == "Ada Lovelace"
    form = {i["name"]: i.get("value", "") for i in details.all("input") if i.get("name")}
    assert (await person.details(details, site, form)).kind == "checkout"


async def test_the_autopilot_session_cannot_skip_the_obstacle(visitor: Visitor) -> None:
    wall = await blocked(visitor, "web-stays", "login", wednesday(15))
    details = await visitor.get(wall.url.replace("/sign-in", "/details"))
    resubmitted = await visitor.details(details, "web-stays", details_fields("web-stays"))
    assert resubmitted.kind == "login-wall"
    assert resubmitted.one("a", id="takeover")["href"] == wall.one("a", id="takeover")["href"]


async def test_fault_rates_put_obstacles_and_errors_on_any_venue(serve_with_faults: Any) -> None:
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as client:
        async with serve_with_faults({"web-tables": {"captcha_rate": 1.0}, "web-air": {"login_rate": 1.0}}) as url:
            visitor = Visitor(client, url)
            assert (await blocked(visitor, "web-tables", "normal", wednesday(16))).kind == "captcha"
            assert (await blocked(visitor, "web-air", "normal", wednesday(16))).kind == "login-wall"
        async with serve_with_faults({"web-stays": {"error_rate": 1.0}}) as url:
            failed = await Visitor(client, url).get(f"{url}/web/web-stays/")
            assert failed.status == 503 and failed.kind == "error"
            assert failed.main["data-reason"] == "injected_fault" and failed.response.headers["retry-after"]
