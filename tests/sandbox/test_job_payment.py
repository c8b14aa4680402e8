"""A job's payment after the handoff, through an API provider (no browser): paid, or expired unpaid.

The job pauses at ``sandbox-tables``'s checkout page. Paying there completes the job; a hold
that lapses is recorded by Errand's own sweep without anyone opening the page, or by the
provider's ``hold_expired`` report, whichever comes first. Time passes by ageing the expiry
through the test's database connection (Errand's recorded expiry, or the provider's hold).
"""

import asyncio
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import update

from errand.jobs import tasks
from errand.kit import clock
from errand.models import Job
from errand.models.sandbox_booking import SandboxBooking
from errand.sandbox.notify import ProviderEvents, sweep_holds
from tests.api.execution.support import JOBS, post, restaurant, wait
from tests.conftest import Org, Server, signed_provider_event

EVENTS = "/api/v1/provider-events"
CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123"}
DEADLINE_SECONDS = 30.0
ONLY_TABLES = {"allowedProviders": ["sandbox-tables"], "allowVenueSwitch": False}


async def paused(org: Org, day: date) -> dict[str, Any]:
    body = await wait(org.agent, await post(org.agent, restaurant(day, consent=ONLY_TABLES)))
    assert body["status"] == "paused_payment" and body["providerId"] == "sandbox-tables", body
    return body


async def read(org: Org, job_id: str) -> dict[str, Any]:
    response = await org.agent.get(f"{JOBS}/{job_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def until(org: Org, job_id: str, done: Any, what: str) -> dict[str, Any]:
    """The job once ``done(job)`` holds; the payment changes in the background (events, the sweep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while True:
        job = await read(org, job_id)
        if done(job):
            return job
        assert loop.time() < deadline, f"{what}: not after {DEADLINE_SECONDS:g} s: {job}"
        await asyncio.sleep(0.2)


def logged(job: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in job["decisionLog"] if e["type"] == type_]


async def age_recorded_expiry(server: Server, job_id: str) -> None:
    """Errand's clock passes the hold expiry it recorded at pause time (the provider's hold is left alone)."""
    async with server.db.unit_of_work() as session:
        await session.execute(update(Job).where(Job.id == job_id)
                              .values(payment_expires_at=clock.now() - timedelta(seconds=1)))


async def age_provider_hold(server: Server, hold_id: str) -> None:
    """The provider's clock passes its hold's expiry (Errand's recorded expiry is left alone)."""
    async with server.db.unit_of_work() as session:
        await session.execute(update(SandboxBooking).where(SandboxBooking.id == hold_id)
                              .values(hold_expires_at=clock.now() - timedelta(seconds=1)))


async def test_a_paused_job_shows_its_payment_awaited_until_the_holds_expiry(org: Org, day: date) -> None:
    body = await paused(org, day)
    assert body["payment"] == {"status": "awaiting", "expiresAt": body["result"]["holdExpiresAt"],
                               "paidAt": None, "confirmation": None}
    assert body["handoffUrl"]
    # Booked outright (no card gate): there was no handoff, so there is no payment to speak of.
    direct = await wait(org.agent, await post(org.agent, restaurant(day, "Carbone", consent={
        "allowedProviders": ["sandbox-dine"], "allowVenueSwitch": False})))
    assert direct["status"] == "completed" and direct["payment"] is None, direct


async def test_paying_at_the_handoff_page_completes_the_job_with_the_confirmation(org: Org, day: date) -> None:
    body = await paused(org, day)
    async with httpx.AsyncClient(timeout=30) as end_user:
        page = await end_user.post(body["handoffUrl"], data=CARD)
    assert page.status_code == 200, page.text

    job = await until(org, body["jobId"], lambda j: j["status"] == "completed", "completed after payment")
    payment = job["payment"]
    assert payment["status"] == "paid" and payment["confirmation"].startswith("SBX-"), payment
    assert payment["expiresAt"] == body["payment"]["expiresAt"] and payment["paidAt"]
    assert payment["confirmation"] in job["summary"] and payment["confirmation"] in page.text
    assert job["result"]["confirmation"] == payment["confirmation"]
    assert job["completedAt"] == payment["paidAt"] and job["completedAt"] >= body["completedAt"]
    assert job["handoffUrl"] is None
    [paid] = logged(job, "payment_completed")
    assert paid["confirmation"] == payment["confirmation"] and paid["providerId"] == "sandbox-tables"
    listed = (await org.agent.get(JOBS, params={"status": "completed"})).json()["jobs"]
    assert [j["payment"] for j in listed if j["jobId"] == body["jobId"]] == [payment]


async def test_a_lapsed_hold_is_expired_by_errand_without_anyone_opening_the_page(
    server: Server, org: Org, day: date
) -> None:
    body = await paused(org, day)
    await age_recorded_expiry(server, body["jobId"])

    job = await until(org, body["jobId"], lambda j: logged(j, "hold_expired"), "hold_expired in the decision log")
    assert job["status"] == "paused_payment"  # terminal in the contract: a client that stopped there stays right
    assert job["payment"]["status"] == "expired" and job["payment"]["confirmation"] is None, job["payment"]
    assert job["handoffUrl"] is None
    assert "expired unpaid" in job["summary"]
    [expired] = logged(job, "hold_expired")
    assert expired["holdId"] == body["result"]["holdId"] and "reported by the provider" not in expired["message"]


async def test_a_late_hold_expired_report_after_errands_sweep_changes_nothing(
    server: Server, org: Org, day: date, anon: httpx.AsyncClient
) -> None:
    body = await paused(org, day)
    await age_recorded_expiry(server, body["jobId"])
    before = await until(org, body["jobId"], lambda j: logged(j, "hold_expired"), "Errand's own expiry")

    report = {"type": "hold_expired", "provider_id": "sandbox-tables", "hold_id": body["result"]["holdId"],
              "reference": None, "occurred_at": clock.iso(clock.now())}
    raw, headers = signed_provider_event(server, report)
    answer = await anon.post(EVENTS, content=raw, headers=headers)
    assert answer.status_code == 200 and answer.json()["jobId"] == body["jobId"], answer.text

    after = await read(org, body["jobId"])
    assert after == before
    audit = (await org.agent.get(f"{JOBS}/{body['jobId']}/audit")).json()["events"]
    assert [e["type"] for e in audit].count("hold_expired") == 1


async def test_the_providers_report_expires_the_hold_when_it_comes_first_and_the_sweep_then_changes_nothing(
    server: Server, org: Org, day: date
) -> None:
    body = await paused(org, day)
    await age_provider_hold(server, body["result"]["holdId"])
    # The sandbox's periodic sweep, as the server runs it, reporting to this server.
    events = ProviderEvents(server.settings.provider_events_signing_secret, f"{server.base_url}{EVENTS}")
    await sweep_holds(server.db, events)
    await events.drain()

    job = await until(org, body["jobId"], lambda j: logged(j, "hold_expired"), "the provider's report")
    assert job["payment"]["status"] == "expired" and job["handoffUrl"] is None, job
    [expired] = logged(job, "hold_expired")
    assert "reported by the provider" in expired["message"] and expired["holdId"] == body["result"]["holdId"]

    await age_recorded_expiry(server, body["jobId"])  # Errand's own clock catches up: nothing more happens
    assert await tasks.expire_handoffs(SimpleNamespace(db=server.db)) == 0  # type: ignore[arg-type]
    again = await read(org, body["jobId"])
    assert len(logged(again, "hold_expired")) == 1 and again["payment"]["status"] == "expired"


async def test_a_payment_reported_for_a_hold_errand_saw_expire_is_trusted(
    server: Server, org: Org, day: date
) -> None:
    """The provider held the table a little longer than Errand's clock said, and the user paid in time."""
    body = await paused(org, day)
    await age_recorded_expiry(server, body["jobId"])
    await until(org, body["jobId"], lambda j: logged(j, "hold_expired"), "Errand's own expiry")

    async with httpx.AsyncClient(timeout=30) as end_user:
        page = await end_user.post(body["handoffUrl"], data=CARD)
    assert page.status_code == 200, page.text

    job = await until(org, body["jobId"], lambda j: j["status"] == "completed", "completed after payment")
    assert job["payment"]["status"] == "paid" and job["payment"]["confirmation"] in job["summary"], job
    assert job["handoffUrl"] is None
    assert [e["type"] for e in job["decisionLog"]][-2:] == ["hold_expired", "payment_completed"]
