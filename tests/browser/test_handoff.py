"""The handoff: the end user pays on the page the autopilot stopped at; the autopilot never types card data."""

import uuid
from datetime import date

import pytest
from playwright.async_api import Browser
from sqlalchemy import select

from errand.kit.config import Settings
from errand.models import SandboxBooking
from errand.providers.base import SearchQuery
from errand.providers.browser import CardFieldRefused, WebTables
from errand.providers.browser.pool import BrowserPool
from errand.providers.browser.site import Visit
from tests.browser.support import (
    DECLINED, PAYS, PROFILE, eventually, job, metrics, needs_chromium, of_type, run,
)
from tests.conftest import Org, Server

pytestmark = needs_chromium


async def _booking(server: Server, hold_id: str) -> tuple[str, str | None]:
    async with server.db.unit_of_work(read_only=True) as session:
        row = (await session.execute(select(SandboxBooking.status, SandboxBooking.confirmation)
                                     .where(SandboxBooking.id == hold_id))).one()
    return row.status, row.confirmation


async def _pay(enduser: Browser, url: str, number: str) -> tuple[int, str]:
    """Pay on the handoff page as the end user would; returns the answer's status and its data-page."""
    page = await enduser.new_page()
    try:
        await page.goto(url)
        await page.fill("#card-number", number)
        await page.fill("#card-expiry", "12/34")
        await page.fill("#card-cvc", "123")
        async with page.expect_navigation() as navigation:
            await page.click("#pay")
        response = await navigation.value
        marker = await page.get_attribute("main", "data-page") or ""
        if marker == "confirmation":
            marker += ":" + (await page.inner_text("#confirmation-number")).strip()
        elif marker == "checkout":
            marker += ":" + (await page.get_attribute("#payment-error", "data-reason") or "")
        return response.status if response else 0, marker
    finally:
        await page.close()


async def test_end_user_pays_after_a_decline_and_the_job_records_the_confirmation(
    server: Server, org: Org, day: date, enduser: Browser
) -> None:
    body, _ = await run(org.agent, job("activity", day, providers=["web-tickets"]))
    assert body["status"] == "paused_payment", body
    hold_id = body["result"]["holdId"]

    status, marker = await _pay(enduser, body["handoffUrl"], DECLINED)
    assert (status, marker) == (402, "checkout:declined")
    assert await _booking(server, hold_id) == ("held", None)

    status, marker = await _pay(enduser, body["handoffUrl"], PAYS)
    assert status == 200 and marker.startswith("confirmation:SBX-"), marker
    confirmation = marker.split(":", 1)[1]

    paid = await eventually(org.agent, body["jobId"], "payment_completed")
    assert paid["confirmation"] == confirmation and paid["providerId"] == "web-tickets"
    assert await _booking(server, hold_id) == ("booked", confirmation)
    job_now = (await org.agent.get(f"/api/v1/execution-jobs/{body['jobId']}")).json()
    assert job_now["result"]["confirmation"] == confirmation
    assert job_now["status"] == "completed" and confirmation in job_now["summary"], job_now
    assert job_now["payment"]["status"] == "paid" and job_now["payment"]["confirmation"] == confirmation
    # Paid where the autopilot stopped: not an override.
    assert (await metrics(org.agent, "web-tickets"))["manualOverrideCount"] == 0


async def test_a_rerun_with_the_same_key_lands_on_the_same_hold(server: Server, day: date) -> None:
    settings = Settings(sandbox_url=f"{server.base_url}/sandbox", provider_timeout_seconds=20)
    pool = BrowserPool(settings.browser_path, 2)
    tables = WebTables(settings, pool)
    try:
        offers = await tables.search(SearchQuery(scenario="restaurant", venue="Le Bernardin", city="New York",
                                                 date=str(day), quantity=2))
        assert offers and all(o.provider_id == "web-tables" for o in offers)
        key = uuid.uuid4().hex
        first = await tables.checkout(offers[0], PROFILE, idempotency_key=key)
        again = await tables.checkout(offers[0], PROFILE, idempotency_key=key)
        assert first.status == again.status == "paused_payment"
        assert (again.hold_id, again.handoff_url) == (first.hold_id, first.handoff_url)
        other = await tables.checkout(offers[0], PROFILE, idempotency_key=uuid.uuid4().hex)
        assert other.hold_id != first.hold_id
    finally:
        await pool.aclose()
    assert pool.open_contexts == 0


async def test_the_autopilot_refuses_to_type_into_card_fields(server: Server, org: Org, day: date) -> None:
    body, _ = await run(org.agent, job("restaurant", day, providers=["web-tables"]))
    assert body["status"] == "paused_payment", body
    pool = BrowserPool("/usr/bin/chromium", 1)
    try:
        async with pool.context() as context:
            visit = Visit("web-tables", await context.new_page(), 20)
            assert await visit.open(body["handoffUrl"]) == "checkout"
            for field in ("card_number", "expiry", "cvc"):
                with pytest.raises(CardFieldRefused):
                    await visit.fill("#payment-form", {field: "4242424242424242"})
            with pytest.raises(CardFieldRefused):
                await visit.submit("#pay")
            await visit.assert_card_fields_untouched()
            assert await visit.page.input_value("#card-number") == ""
    finally:
        await pool.aclose()
    events = of_type((await org.agent.get(f"/api/v1/execution-jobs/{body['jobId']}/audit")).json()["events"],
                     "payment_completed")
    assert events == []
