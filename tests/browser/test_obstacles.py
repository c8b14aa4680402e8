"""What the web sites put in the autopilot's way, what the chain does next, and the human takeover.

The chains here try the web site first: the organization's recent failures at the API
provider (``prefer_web``) put it behind, as the planner's success-rate ordering does.
"""

import re
from datetime import date

from playwright.async_api import Browser

from tests.browser.conftest import Prefer
from tests.browser.support import (
    PAYS, eventually, fallbacks, job, metrics, needs_chromium, of_type, run_all, tried,
)
from tests.conftest import Org, Server

pytestmark = needs_chromium


async def test_each_obstacle_at_a_web_site_falls_back_to_the_next_provider(
    org: Org, day: date, prefer_web: Prefer
) -> None:
    cases = [
        # (job, web provider, next provider, fallback reason, where the next provider stops)
        (job("restaurant", day, "Katz's Delicatessen", providers=["web-tables", "sandbox-tables"]),
         "web-tables", "sandbox-tables", "login_wall", "paused_payment"),
        (job("flight", day, "New York-Paris", providers=["web-air", "sandbox-air"]),
         "web-air", "sandbox-air", "captcha", "paused_payment"),
        (job("restaurant", day, "Via Carota", providers=["web-tables", "sandbox-dine"]),
         "web-tables", "sandbox-dine", "sold_out", "completed"),  # no card gate at sandbox-dine
    ]
    for api_provider in {case[2] for case in cases}:
        await prefer_web(api_provider)
    done = await run_all(org.agent, [case[0] for case in cases])
    for (_, web, after, reason, status), (body, events) in zip(cases, done):
        assert tried(events) == [web, after], (reason, events)
        assert fallbacks(events) == [(web, after, reason)]
        assert body["status"] == status and body["providerId"] == after, body
        assert body["usedFallback"] is True and body["sessionUrl"] is None


async def test_an_obstacle_no_provider_gets_past_ends_the_job_with_the_takeover_link(
    server: Server, org: Org, day: date, prefer_web: Prefer
) -> None:
    # Every hotel provider walls Pod 51 off; the web site, tried first, is the only one with a
    # link the end user can continue from, and that link is handed over.
    await prefer_web("sandbox-stays")
    await prefer_web("sandbox-rooms")
    cases = [
        (job("restaurant", day, "Peter Luger", providers=["web-tables"]), "captcha", ["web-tables"]),
        (job("hotel", day, "Pod 51/New York"), "needs_login", ["web-stays", "sandbox-stays", "sandbox-rooms"]),
    ]
    done = await run_all(org.agent, [case[0] for case in cases])
    for (_, status, chain), (body, events) in zip(cases, done):
        assert body["status"] == status, body
        assert tried(events) == chain
        web = chain[0]
        assert re.fullmatch(rf"{server.base_url}/sandbox/web/{web}/resume/[\w-]+", body["sessionUrl"] or ""), body
        failed = of_type(events, "job_failed")
        assert failed and failed[-1]["status"] == status


async def test_the_end_user_takes_over_solves_the_captcha_and_pays(
    org: Org, day: date, enduser: Browser
) -> None:
    [(body, _)] = await run_all(org.agent, [job("activity", day, "Knicks vs Celtics", providers=["web-tickets"])])
    assert body["status"] == "captcha", body
    page = await enduser.new_page()
    try:
        response = await page.goto(body["sessionUrl"])
        assert response is not None and response.status == 200
        assert await page.get_attribute("main", "data-page") == "captcha"
        assert await page.locator("#takeover").count() == 0
        answer = (await page.inner_text("#sandbox-hint code")).strip()
        await page.fill("#captcha-answer", answer)
        async with page.expect_navigation():
            await page.click("#verify")
        assert await page.get_attribute("main", "data-page") == "details"
        assert await page.input_value("#full-name") == "Ada Lovelace"  # what the autopilot typed
        async with page.expect_navigation():
            await page.click("#buy-now")
        assert await page.get_attribute("main", "data-page") == "checkout"
        await page.fill("#card-number", PAYS)
        await page.fill("#card-expiry", "12/34")
        await page.fill("#card-cvc", "123")
        async with page.expect_navigation():
            await page.click("#pay")
        assert await page.get_attribute("main", "data-page") == "confirmation"
        confirmation = (await page.inner_text("#confirmation-number")).strip()

        again = await page.goto(body["sessionUrl"])
        assert again is not None and again.status == 410
        assert await page.get_attribute("main", "data-page") == "takeover-used"
    finally:
        await page.close()

    taken = await eventually(org.agent, body["jobId"], "human_takeover")
    assert taken["providerId"] == "web-tickets"
    paid = await eventually(org.agent, body["jobId"], "payment_completed")
    assert paid["confirmation"] == confirmation
    # The autopilot had given up; the end user finished: counted as a manual override, and the job is booked.
    assert (await metrics(org.agent, "web-tickets"))["manualOverrideCount"] == 1
    finished = (await org.agent.get(f"/api/v1/execution-jobs/{body['jobId']}")).json()
    assert finished["status"] == "completed" and finished["payment"]["confirmation"] == confirmation, finished
