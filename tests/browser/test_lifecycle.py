"""The autopilot's browser over a job's life: holds that lapse, jobs that overrun, servers without a browser."""

import asyncio
from datetime import date, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser

from errand.kit import clock
from errand.providers.browser.pool import shared_pool
from tests.browser.conftest import Prefer, Sibling
from tests.browser.support import (
    HAS_CHROMIUM, eventually, fallbacks, job, needs_chromium, of_type, playing, run, run_all, tried,
)
from tests.conftest import Org
from tests.sandbox.api_support import server_credentials

HOLD_SECONDS = 3
SLOW_SECONDS = 2.5


async def _remaining(client: httpx.AsyncClient, day: date, unit: str) -> int:
    """Rooms of ``unit`` left at The Plaza for the night of ``day``, as the sandbox's JSON API counts them."""
    response = await client.post("/sandbox/api/sandbox-stays/search", json={
        "scenario": "hotel", "venue": "The Plaza", "city": "New York", "date": str(day),
        "end_date": str(day + timedelta(days=1)), "quantity": 2}, auth=server_credentials())
    assert response.status_code == 200, response.text
    return next(o["remaining"] for o in response.json()["offers"] if o["unit"] == unit)


@needs_chromium
async def test_an_unpaid_hold_expires_and_frees_the_inventory(
    org: Org, day: date, sibling: Sibling, enduser: Browser
) -> None:
    async with sibling(sandbox_hold_ttl_seconds=HOLD_SECONDS) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, headers=org.agent.headers, timeout=30) as agent:
            before = await _remaining(agent, day, "STD")
            body, _ = await run(agent, job("hotel", day, providers=["web-stays"]))
            assert body["status"] == "paused_payment" and body["result"]["unit"] == "Standard King", body
            assert await _remaining(agent, day, "STD") == before - 1

            expires = datetime.fromisoformat(body["result"]["holdExpiresAt"].replace("Z", "+00:00"))
            assert expires <= clock.now() + timedelta(seconds=HOLD_SECONDS)
            await asyncio.sleep(max(0.0, (expires - clock.now()).total_seconds()) + 0.5)
            assert await _remaining(agent, day, "STD") == before

            page = await enduser.new_page()
            try:
                response = await page.goto(body["handoffUrl"])
                assert response is not None and response.status == 410
                assert await page.get_attribute("main", "data-page") == "checkout-expired"
                assert await page.locator("#card-number").count() == 0
            finally:
                await page.close()
            expired = await eventually(agent, body["jobId"], "hold_expired")
            assert expired["holdId"] == body["result"]["holdId"]
            now = (await agent.get(f"/api/v1/execution-jobs/{body['jobId']}")).json()
            assert now["status"] == "paused_payment" and now["handoffUrl"] is None, now
            assert now["payment"]["status"] == "expired"


@needs_chromium
async def test_a_job_past_its_time_budget_is_stopped_and_its_browser_context_closed(
    org: Org, day: date, sibling: Sibling
) -> None:
    slow = {"web-tickets": {"latency_ms": int(SLOW_SECONDS * 1000)}}
    async with sibling(sandbox_faults=slow) as (base_url, settings):
        async with httpx.AsyncClient(base_url=base_url, headers=org.agent.headers, timeout=30) as agent:
            started = asyncio.get_running_loop().time()
            body, events = await run(agent, job("activity", playing(day), providers=["web-tickets"],
                                                maxJobDurationSeconds=5))
            took = asyncio.get_running_loop().time() - started
        pool = shared_pool(settings)
        assert body["status"] == "error" and "maxJobDurationSeconds" in body["error"], body
        assert tried(events) == ["web-tickets"]
        assert took < 5 + 3 * SLOW_SECONDS, took  # stopped, not run to the end
        assert pool.contexts_opened >= 1
        assert pool.open_contexts == 0


@needs_chromium
async def test_a_site_that_keeps_failing_is_retried_then_left_for_the_next_provider(
    org: Org, day: date, sibling: Sibling, prefer_web: Prefer
) -> None:
    await prefer_web("sandbox-stays")
    async with sibling(sandbox_faults={"web-stays": {"error_rate": 1.0}}) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, headers=org.agent.headers, timeout=30) as agent:
            body, events = await run(agent, job("hotel", day, providers=["web-stays", "sandbox-stays"],
                                                maxRetries=1))
    attempts = [e for e in of_type(events, "step_attempt") if e["providerId"] == "web-stays"]
    assert [e["attempt"] for e in attempts] == [1, 2]
    assert fallbacks(events) == [("web-stays", "sandbox-stays", "transient_error")]
    assert body["status"] == "paused_payment" and body["providerId"] == "sandbox-stays", body


async def test_without_a_browser_the_planner_skips_browser_providers(org: Org, day: date, sibling: Sibling) -> None:
    async with sibling(browser_path="/nonexistent/chromium") as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, headers=org.agent.headers, timeout=30) as agent:
            (served, served_events), (only, only_events) = await run_all(agent, [
                job("restaurant", day, "Le Bernardin", providers=["sandbox-tables", "web-tables"]),
                job("restaurant", day, "Le Bernardin", providers=["web-tables"]),
            ])
    assert fallbacks(served_events) == [("web-tables", None, "browser_unavailable")]
    assert served["status"] == "paused_payment" and served["providerId"] == "sandbox-tables", served
    assert tried(served_events) == ["sandbox-tables"]

    assert fallbacks(only_events) == [("web-tables", None, "browser_unavailable")]
    assert only["status"] == "error" and only["error"].startswith("browser_unavailable"), only
    assert tried(only_events) == [] and of_type(only_events, "job_failed")


@pytest.mark.skipif(HAS_CHROMIUM, reason="only meaningful where no Chromium is installed")
async def test_without_chromium_installed_web_jobs_do_not_crash(org: Org, day: date) -> None:
    body, events = await run(org.agent, job("restaurant", day, providers=["web-tables"]))
    assert body["status"] == "error" and body["error"].startswith("browser_unavailable")
    assert fallbacks(events) == [("web-tables", None, "browser_unavailable")]
