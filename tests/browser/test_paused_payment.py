"""Each scenario's web-only provider, driven by the autopilot's Chromium up to the payment page."""

from datetime import date

import httpx
from playwright.async_api import Browser

from tests.browser.support import JOBS, WEB, job, needs_chromium, of_type, run, run_all, types
from tests.conftest import Org, Server, mint_key

pytestmark = needs_chromium


async def test_each_web_provider_stops_at_its_checkout_page(server: Server, org: Org, day: date,
                                                            enduser: Browser) -> None:
    scenarios = ["restaurant", "hotel", "flight", "activity"]
    done = await run_all(org.agent, [job(s, day, providers=[WEB[s]]) for s in scenarios])
    for scenario, (body, events) in zip(scenarios, done):
        provider = WEB[scenario]
        assert body["status"] == "paused_payment", (scenario, body)
        assert body["providerId"] == provider
        assert body["handoffUrl"].startswith(f"{server.base_url}/sandbox/web/{provider}/checkout/"), body
        assert body["result"]["holdId"] and body["result"]["holdExpiresAt"], body["result"]
        paused = of_type(events, "paused_payment")
        assert [e["handoffUrl"] for e in paused] == [body["handoffUrl"]]
        assert types(events)[-1] == "paused_payment"
    # The handoff page is the site's payment page, held for the user, its card fields untouched.
    page = await enduser.new_page()
    try:
        for _, (body, _) in zip(scenarios, done):
            response = await page.goto(body["handoffUrl"])
            assert response is not None and response.status == 200
            assert await page.get_attribute("main", "data-page") == "checkout"
            assert await page.get_attribute("#hold-summary", "data-status") == "held"
            assert await page.get_attribute("#hold-summary", "data-hold-id") == body["result"]["holdId"]
            for field in ("#card-number", "#card-expiry", "#card-cvc"):
                assert await page.input_value(field) == ""
    finally:
        await page.close()


async def test_snapshots_list_each_step_and_serve_pngs_to_the_job_org_only(
    server: Server, org: Org, day: date
) -> None:
    body, _ = await run(org.agent, job("restaurant", day, providers=["web-tables"]))
    assert body["status"] == "paused_payment", body
    listed = await org.agent.get(f"{JOBS}/{body['jobId']}/snapshots")
    assert listed.status_code == 200, listed.text
    found = listed.json()
    assert found["jobId"] == body["jobId"] and found["count"] == len(found["snapshots"])
    steps = [s["step"] for s in found["snapshots"]]
    for step in ("web-tables/search", "web-tables/results", "web-tables/details", "web-tables/checkout"):
        assert step in steps, steps
    assert steps.index("web-tables/results") < steps.index("web-tables/checkout")
    checkout = next(s for s in found["snapshots"] if s["step"] == "web-tables/checkout")
    assert checkout["url"] == body["handoffUrl"]
    assert set(checkout) == {"snapshotId", "step", "url", "timestamp"}
    image = await org.agent.get(f"{JOBS}/{body['jobId']}/snapshots/{checkout['snapshotId']}/image")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n") and len(image.content) > 1000

    unknown = await org.agent.get(f"{JOBS}/{body['jobId']}/snapshots/snap_nope/image")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "snapshot_not_found"
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as other:
        other.headers["Authorization"] = f"Bearer {await mint_key(server, org.name + ' rival')}"
        for path in ("/snapshots", f"/snapshots/{checkout['snapshotId']}/image"):
            response = await other.get(f"{JOBS}/{body['jobId']}{path}")
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "job_not_found"
