"""Where execution jobs stop: every status of the contract, reached through the sandbox's real behaviour.

Each job is posted over HTTP and carried by the server's own runner through the sandbox
providers; the sandbox catalog fixes which venue meets which obstacle at which provider
(restaurants: sandbox-tables stops at payment, sandbox-dine books at once; Gramercy
Tavern is walled at the first, Peter Luger shows a CAPTCHA at both, Tatiana a login wall
at both; hotels, flights and events have their own such venues and routes).
"""

import asyncio
from datetime import date
from typing import Any

import httpx

from tests.api.execution.support import (
    JOBS, SLOW_SECONDS, TERMINAL, activity, audit, fallbacks, flight, hotel, monday, of_type, one, post, restaurant,
    run, run_all, tried, types, wait,
)
from tests.conftest import Org
from tests.sandbox.api_support import server_credentials

APPROVALS = "/api/approvals"


async def create_policy(org: Org, name: str, type_: str, config: dict[str, Any]) -> dict[str, Any]:
    response = await org.admin.post("/api/v1/policies", json={"name": name, "type": type_, "config": config})
    assert response.status_code == 201, response.text
    return response.json()


async def pending_approvals(org: Org) -> list[dict[str, Any]]:
    response = await org.admin.get(APPROVALS, params={"status": "pending"})
    assert response.status_code == 200, response.text
    return response.json()["approvals"]


async def test_paused_payment_hands_off_to_the_sandbox_checkout_page(org: Org, day: date) -> None:
    done, events = await run(org.agent, restaurant(day, "Le Bernardin", "19:00", covers=2))
    assert done["status"] == "paused_payment", done
    assert done["providerId"] == "sandbox-tables"
    assert (done["attemptCount"], done["usedFallback"]) == (1, False)
    assert done["completedAt"] and done["summary"] and "Le Bernardin" in done["summary"]
    assert done["error"] is None
    assert done["result"]["start"] == f"{day}T19:00" and done["result"]["totalPriceUsd"] == 450
    url = done["handoffUrl"]
    assert url.startswith("http://") and "/sandbox/checkout/" in url, url
    async with httpx.AsyncClient(timeout=30) as browser:
        page = await browser.get(url)
    assert page.status_code == 200
    assert "Le Bernardin" in page.text and 'name="card_number"' in page.text
    assert types(events)[:3] == ["job_created", "job_started", "step_started"]
    assert tried(events) == ["sandbox-tables"]
    assert one(events, "paused_payment")["handoffUrl"] == url
    assert "action_allowed" in types(events)
    assert "action_allowed" in [d["type"] for d in done["decisionLog"]]
    assert not {"job_failed", "provider_fallback"} & set(types(events))


async def test_a_login_wall_at_the_first_provider_falls_back_to_one_that_books(org: Org, day: date) -> None:
    done, events = await run(org.agent, restaurant(day, "Gramercy Tavern", "19:00"))
    assert done["status"] == "completed", done
    assert done["providerId"] == "sandbox-dine" and done["handoffUrl"] is None
    assert (done["attemptCount"], done["usedFallback"]) == (2, True)
    assert done["result"]["confirmation"].startswith("SBX-")
    assert tried(events) == ["sandbox-tables", "sandbox-dine"]
    assert fallbacks(events) == [("sandbox-tables", "sandbox-dine", "login_wall")]
    fallback = one(events, "provider_fallback")
    assert fallback["stepIndex"] == 0
    completed = one(events, "job_completed")
    assert completed["stepIndex"] == 1 and completed["confirmation"] == done["result"]["confirmation"]
    assert "provider_fallback" in [d["type"] for d in done["decisionLog"]]


async def test_walls_at_every_provider_end_in_captcha_or_needs_login(
    org: Org, day: date, api_only: dict[str, Any]
) -> None:
    cases = [
        (restaurant(day, "Peter Luger", consent=api_only), "captcha", ["sandbox-tables", "sandbox-dine"]),
        (restaurant(day, "Tatiana", consent=api_only), "needs_login", ["sandbox-tables", "sandbox-dine"]),
        (hotel(day, "The Greenwich Hotel", consent=api_only), "captcha", ["sandbox-stays", "sandbox-rooms"]),
        (hotel(day, "Pod 51", consent=api_only), "needs_login", ["sandbox-stays", "sandbox-rooms"]),
        (flight(day, "San Francisco", "Tokyo", consent=api_only), "captcha", ["sandbox-air", "sandbox-fares"]),
        (flight(day, "Tokyo", "Paris", consent=api_only), "needs_login", ["sandbox-air", "sandbox-fares"]),
        (activity(day, "Knicks vs Celtics", consent=api_only), "captcha", ["sandbox-tickets"]),
        (activity(day, "New York Philharmonic", consent=api_only), "needs_login", ["sandbox-tickets"]),
    ]
    results = await run_all(org.agent, [body for body, _, _ in cases])
    reason = {"captcha": "captcha", "needs_login": "login_wall"}
    for (body, status, chain), (done, events) in zip(cases, results, strict=True):
        what = body["request"]["params"]
        assert done["status"] == status, (what, done)
        assert done["attemptCount"] == len(chain) and done["usedFallback"] == (len(chain) > 1)
        assert done["completedAt"] and done["handoffUrl"] is None
        assert tried(events) == chain, what
        assert fallbacks(events) == [(a, b, reason[status]) for a, b in zip(chain, [*chain[1:], None])], what
        assert one(events, "job_failed")["status"] == status
        assert "venue_switched" not in types(events)  # a wall is not a reason to go elsewhere


async def test_nothing_within_budget_or_on_a_closed_day_is_no_availability(
    org: Org, day: date, api_only: dict[str, Any]
) -> None:
    stay_put = {"allowVenueSwitch": False, **api_only}
    cases = [
        (restaurant(day, "Le Bernardin", budget_per_person=100, consent=stay_put), "over_budget"),
        (restaurant(monday(day), "Momofuku Ko", consent=stay_put), "no_offers"),  # closed on Mondays
        (hotel(day, "The Plaza", budget_max_per_night=500, consent=stay_put), "over_budget"),
        (flight(day, targetPrice=100, consent=api_only), "over_budget"),
        (activity(day, "Hamilton", budget_max_per_ticket=50, consent=stay_put), "over_budget"),
    ]
    results = await run_all(org.agent, [body for body, _ in cases])
    for (body, reason), (done, events) in zip(cases, results, strict=True):
        what = body["request"]["params"]
        assert done["status"] == "no_availability", (what, done)
        assert done["handoffUrl"] is None and done["completedAt"], what
        steps = tried(events)
        assert done["attemptCount"] == len(steps)
        assert [r for _, _, r in fallbacks(events)] == [reason] * len(steps), (what, fallbacks(events))
        assert one(events, "job_failed")["status"] == "no_availability"
        assert not {"paused_payment", "job_completed", "venue_switched"} & set(types(events)), what


async def test_a_spending_limit_denies_the_job_as_an_error_naming_the_policy(org: Org, day: date) -> None:
    policy = await create_policy(org, "Nothing above 300 USD", "SPENDING_LIMIT", {"maxAmountUsd": 300})
    done, events = await run(org.agent, restaurant(day, "Le Bernardin", covers=2))  # 450 USD
    assert done["status"] == "error", done
    assert "Nothing above 300 USD" in done["error"] and policy["id"] in done["error"]
    assert done["handoffUrl"] is None and done["completedAt"]
    denied = one(events, "action_denied")
    assert denied["policyId"] == policy["id"] and "Nothing above 300 USD" in denied["message"]
    assert one(events, "job_failed")["status"] == "error"
    assert not {"paused_payment", "job_completed", "action_allowed"} & set(types(events))
    cheap, _ = await run(org.agent, restaurant(day, "Le Bernardin", time="20:00", covers=1))  # 225 USD
    assert cheap["status"] == "paused_payment", cheap


async def test_a_job_awaits_approval_and_resumes_on_approval_or_ends_on_denial(org: Org, day: date) -> None:
    policy = await create_policy(org, "A person approves every booking", "APPROVAL_REQUIRED", {})
    (approved, first), (fell_back, _), (denied, second) = await run_all(org.agent, [
        restaurant(day, "Le Bernardin", "19:00"), restaurant(day, "Gramercy Tavern", "19:00"),
        restaurant(day, "Le Bernardin", "20:00"),
    ], until={"awaiting_approval"})
    waiting = {a["job_id"]: a for a in await pending_approvals(org)}
    assert len(waiting) == 3
    for job, events in ((approved, first), (denied, second)):
        assert job["status"] == "awaiting_approval"
        assert job["completedAt"] is None and job["handoffUrl"] is None
        assert job["approvalId"] == waiting[job["jobId"]]["id"]
        assert waiting[job["jobId"]]["policy_id"] == policy["id"]
        assert waiting[job["jobId"]]["action"]["venueName"] == "Le Bernardin"
        assert one(events, "awaiting_approval")["approvalId"] == job["approvalId"]
    for job in (approved, fell_back):
        yes = await org.admin.post(f"{APPROVALS}/{job['approvalId']}/decision", json={"decision": "approved"})
        assert yes.status_code == 200, yes.text
    no = await org.admin.post(f"{APPROVALS}/{denied['approvalId']}/decision",
                              json={"decision": "denied", "note": "too dear"})
    assert no.status_code == 200, no.text
    assert no.json()["job_status"] == "error"

    resumed = await wait(org.agent, approved["jobId"])
    assert resumed["status"] == "paused_payment", resumed
    assert resumed["result"]["start"] == f"{day}T19:00" and resumed["handoffUrl"]
    resumed_events = await audit(org.agent, approved["jobId"])
    assert types(resumed_events)[-4:] == ["action_allowed", "job_started", "action_allowed", "paused_payment"]
    assert of_type(resumed_events, "action_allowed")[-1]["approvalId"] == approved["approvalId"]
    # The run that found the offer and the run that books it once approved make one attempt.
    assert (resumed["attemptCount"], resumed["usedFallback"]) == (1, False)
    booked = await wait(org.agent, fell_back["jobId"])
    assert booked["status"] == "completed" and booked["providerId"] == "sandbox-dine", booked
    assert (booked["attemptCount"], booked["usedFallback"]) == (2, True)

    ended = await wait(org.agent, denied["jobId"])
    assert ended["status"] == "error" and "denied" in ended["error"] and "too dear" in ended["error"]
    ended_events = await audit(org.agent, denied["jobId"])
    assert one(ended_events, "action_denied")["approvalId"] == denied["approvalId"]
    assert one(ended_events, "job_failed")["status"] == "error"
    assert "paused_payment" not in types(ended_events)
    assert await pending_approvals(org) == []


async def test_cancelling_a_job_that_awaits_approval_voids_the_approval(org: Org, day: date) -> None:
    await create_policy(org, "A person approves every booking", "APPROVAL_REQUIRED", {})
    job_id = await post(org.agent, hotel(day, "The Plaza"))
    waiting = await wait(org.agent, job_id, {"awaiting_approval"})
    cancelled = await org.agent.post(f"{JOBS}/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["completedAt"]
    assert await pending_approvals(org) == []
    late = await org.admin.post(f"{APPROVALS}/{waiting['approvalId']}/decision", json={"decision": "approved"})
    assert late.status_code == 409
    final = await wait(org.agent, job_id)
    assert final["status"] == "cancelled"
    events = await audit(org.agent, job_id)
    assert types(events)[-1] == "job_aborted"
    assert "paused_payment" not in types(events)


async def test_a_job_cancelled_while_running_stops_before_it_holds_anything(
    org: Org, day: date, slow_url: str
) -> None:
    async with httpx.AsyncClient(base_url=slow_url, timeout=30,
                                 headers={"Authorization": f"Bearer {org.agent_key}"}) as slow:
        job_id = await post(slow, restaurant(day, "Le Bernardin", "19:00",
                                             consent={"allowedProviders": ["sandbox-tables"]}))
        running = await wait(slow, job_id, {"running"} | TERMINAL)
        assert running["status"] == "running", running  # its search takes SLOW_SECONDS
        cancelled = await slow.post(f"{JOBS}/{job_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        # Give the runner time to get its search answered, and to check out if it (wrongly) would.
        await asyncio.sleep(2 * SLOW_SECONDS + 1)
        final = await wait(slow, job_id)
        events = await audit(slow, job_id)
        tables = await slow.get("/sandbox/api/sandbox-tables/restaurants/rst_le-bernardin-new-york/availability",
                                params={"date": str(day), "party_size": 1}, auth=server_credentials())
    assert final["status"] == "cancelled" and final["handoffUrl"] is None, final
    after = types(events)[types(events).index("job_aborted") + 1:]
    assert not {"action_allowed", "paused_payment", "job_completed"} & set(after), types(events)
    left = {s["time"]: s["remaining"] for s in tables.json()["slots"]}
    assert left["19:00"] == 10, "a cancelled job must not hold a table"


async def test_every_scenario_reaches_the_payment_page_or_books(org: Org, day: date) -> None:
    cases = [
        # (body, status, provider, what the result must show)
        (restaurant(day, "Le Bernardin"), "paused_payment", "sandbox-tables", {"venueName": "Le Bernardin"}),
        (restaurant(day, "Via Carota"), "completed", "sandbox-dine", {"venueName": "Via Carota"}),
        (hotel(day, "The Plaza", nights=2), "paused_payment", "sandbox-stays",
         {"venueName": "The Plaza", "start": f"{day}T15:00", "totalPriceUsd": 2 * 845}),
        (hotel(day, "Ace Hotel New York"), "completed", "sandbox-rooms", {"venueName": "Ace Hotel New York"}),
        (hotel(day, "Hotel Zetta", city="San Francisco"), "completed", "sandbox-rooms", {"city": "San Francisco"}),
        (flight(day, "New York", "San Francisco", passengers=2), "paused_payment", "sandbox-air",
         {"quantity": 2, "totalPriceUsd": 2 * 180}),
        (flight(day, "New York", "Tokyo"), "paused_payment", "sandbox-fares", {"city": "New York"}),
        (flight(day, "Chicago", "Paris"), "paused_payment", "sandbox-fares", {"city": "Chicago"}),
        (activity(day, "Hamilton"), "paused_payment", "sandbox-tickets",
         {"venueName": "Hamilton", "totalPriceUsd": 2 * 72}),
    ]
    results = await run_all(org.agent, [body for body, *_ in cases])
    for (body, status, provider, shown), (done, events) in zip(cases, results, strict=True):
        what = body["request"]["params"]
        assert done["status"] == status, (what, done)
        assert done["providerId"] == provider and tried(events)[-1] == provider, what
        assert done["usedFallback"] == (tried(events)[0] != provider)
        assert done["attemptCount"] == len(tried(events))
        assert {k: done["result"][k] for k in shown} == shown, (what, done["result"])
        if status == "paused_payment":
            assert done["handoffUrl"] and one(events, "paused_payment")["handoffUrl"] == done["handoffUrl"]
        else:
            assert done["handoffUrl"] is None and done["result"]["confirmation"]
            assert one(events, "job_completed")["confirmation"] == done["result"]["confirmation"]
