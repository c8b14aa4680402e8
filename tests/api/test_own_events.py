"""Errand's own events: every job, transaction and approval state change leaves exactly one
event in the outbox, written with the change (a rolled-back change leaves none), never with
personal data, and read back only within its organization and mode.

The changes are driven over HTTP through the real server and its in-process runner; the
outbox is read through the test's own database connection with the outbox's read API
(:func:`errand.outbox.service.events_for`), as a consumer reads it.
"""

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from errand.kit import clock
from errand.models import Approval, Job, Organization
from errand.outbox import service as outbox_service
from errand.outbox.schemas import EVENT_TYPES, PERSONAL_KEYS, Event
from tests.api.execution.support import FLYER, JOBS, PROFILE, hotel, post, restaurant, run_all, wait
from tests.api.reservations import triggers
from tests.conftest import Org, Server

BOOK = "/api/v1/agent/restaurant/book"
CANCEL = "/api/v1/agent/restaurant/cancel"
MODIFY = "/api/v1/agent/restaurant/modify"
APPROVALS = "/api/approvals"
CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123"}
ONLY_TABLES = {"allowedProviders": ["sandbox-tables"], "allowVenueSwitch": False}
CUSTOMER = {"name": "Jane Doe", "email": "jane@example.com", "phone": "+15559876543"}
# What no payload may contain: every personal value the tests send.
PERSONAL_VALUES = {v for v in (*PROFILE.values(), *FLYER.values(), *CUSTOMER.values())}
DEADLINE_SECONDS = 30.0


async def org_id(server: Server, org: Org) -> str:
    async with server.db.unit_of_work(read_only=True) as session:
        return (await session.execute(select(Organization.id).where(Organization.name == org.name))).scalar_one()


async def events(server: Server, org: Org, subject_id: str | None = None, env: str = "live") -> list[Event]:
    async with server.db.unit_of_work(read_only=True) as session:
        return await outbox_service.events_for(session, organization_id=await org_id(server, org), env=env,
                                               subject_id=subject_id, limit=500)


def clean(event: Event) -> Event:
    """``event``, checked: a known type, source errand, no personal key or value in its payload."""
    assert event.event_type in EVENT_TYPES and event.source_product == "errand", event
    assert not PERSONAL_KEYS & set(event.payload), event
    text = json.dumps(event.payload)
    assert not [v for v in PERSONAL_VALUES if v in text], event
    return event


async def one(server: Server, org: Org, subject_id: str, event_type: str) -> dict[str, Any]:
    """The payload of the one ``event_type`` event about ``subject_id`` (there must be exactly one)."""
    found = [clean(e) for e in await events(server, org, subject_id) if e.event_type == event_type]
    assert len(found) == 1, (event_type, found)
    assert found[0].subject_id == subject_id
    return found[0].payload


async def types_of(server: Server, org: Org, subject_id: str) -> list[str]:
    return [clean(e).event_type for e in await events(server, org, subject_id)]


async def eventually(server: Server, org: Org, subject_id: str, event_type: str) -> dict[str, Any]:
    """The one ``event_type`` about ``subject_id`` once it is there (changes made in the background)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while event_type not in await types_of(server, org, subject_id):
        assert loop.time() < deadline, f"no {event_type} about {subject_id}"
        await asyncio.sleep(0.2)
    return await one(server, org, subject_id, event_type)


async def policy(org: Org, config: dict[str, Any], type_: str = "APPROVAL_REQUIRED") -> None:
    response = await org.admin.post("/api/v1/policies", json={"name": f"{type_} {config}", "type": type_,
                                                               "config": config})
    assert response.status_code == 201, response.text


async def decide(org: Org, approval_id: str, decision: str) -> None:
    response = await org.admin.post(f"{APPROVALS}/{approval_id}/decision", json={"decision": decision,
                                                                                   "note": "Jane Doe said so"})
    assert response.status_code == 200, response.text


# --- jobs ------------------------------------------------------------------------------------


async def test_a_job_paused_at_payment_then_paid_reports_each_step_once(org: Org, server: Server, day: date) -> None:
    job_id = await post(org.agent, restaurant(day, consent=ONLY_TABLES))
    paused = await wait(org.agent, job_id)
    assert paused["status"] == "paused_payment", paused
    created = await one(server, org, job_id, "job.created")
    assert created == {"job_id": job_id, "scenario": "restaurant", "status": "pending"}
    payload = await one(server, org, job_id, "job.paused_payment")
    assert payload["status"] == "paused_payment" and payload["provider_id"] == "sandbox-tables"
    assert payload["venue_name"] == "Le Bernardin" and payload["amount_usd"] == 450.0

    async with httpx.AsyncClient(timeout=30) as end_user:
        page = await end_user.post(paused["handoffUrl"], data=CARD)
    assert page.status_code == 200, page.text
    paid = await eventually(server, org, job_id, "job.payment_completed")
    assert paid["status"] == "completed" and paid["provider_id"] == "sandbox-tables"
    assert (await one(server, org, job_id, "job.completed"))["status"] == "completed"
    assert await types_of(server, org, job_id) == ["job.created", "job.paused_payment", "job.payment_completed",
                                                   "job.completed"]


async def test_a_lapsed_hold_reports_hold_expired_once(org: Org, server: Server, day: date) -> None:
    job_id = await post(org.agent, restaurant(day, "Le Bernardin", "20:00", consent=ONLY_TABLES))
    assert (await wait(org.agent, job_id))["status"] == "paused_payment"
    async with server.db.unit_of_work() as session:
        await session.execute(update(Job).where(Job.id == job_id)
                              .values(payment_expires_at=clock.now() - timedelta(seconds=1)))
    expired = await eventually(server, org, job_id, "job.hold_expired")
    assert expired["status"] == "paused_payment" and expired["hold_status"] == "expired"
    assert "job.payment_completed" not in await types_of(server, org, job_id)


async def test_a_job_booked_outright_and_jobs_that_fail_report_completed_or_failed_with_the_reason(
    org: Org, server: Server, day: date
) -> None:
    # Blocking the browser providers, as tests/api/execution's ``api_only`` does, keeps the walls fast.
    providers = (await org.agent.get("/api/v1/providers")).json()["providers"]
    api_only = {"blockedProviders": [p["id"] for p in providers if p["kind"] == "browser"]}
    stay_put = {**api_only, "allowVenueSwitch": False}
    finished = await run_all(org.agent, [
        restaurant(day, "Via Carota"),
        restaurant(day, "Peter Luger", consent=api_only),
        restaurant(day, "Tatiana", consent=api_only),
        restaurant(day, "Le Bernardin", budget_per_person=100, consent=stay_put),
    ])
    expected = ["completed", "captcha", "needs_login", "no_availability"]
    assert [done["status"] for done, _ in finished] == expected
    booked = finished[0][0]["jobId"]
    assert (await one(server, org, booked, "job.completed"))["venue_name"] == "Via Carota"
    assert await types_of(server, org, booked) == ["job.created", "job.completed"]
    for (done, _), status in zip(finished[1:], expected[1:], strict=True):
        failed = await one(server, org, done["jobId"], "job.failed")
        assert failed["reason"] == failed["status"] == status, failed
        assert await types_of(server, org, done["jobId"]) == ["job.created", "job.failed"]


async def test_a_policy_denial_is_a_failed_job_with_reason_error(org: Org, server: Server, day: date) -> None:
    await policy(org, {"maxAmountUsd": 300}, "SPENDING_LIMIT")
    job_id = await post(org.agent, restaurant(day, "Le Bernardin", covers=2))
    assert (await wait(org.agent, job_id))["status"] == "error"
    assert (await one(server, org, job_id, "job.failed"))["reason"] == "error"


async def test_job_approvals_report_requested_decided_and_the_jobs_outcome(
    org: Org, server: Server, day: date
) -> None:
    await policy(org, {})
    approved_id, denied_id = [await post(org.agent, restaurant(day, "Le Bernardin", t, consent=ONLY_TABLES))
                              for t in ("19:00", "20:00")]
    approved, denied = [await wait(org.agent, j, {"awaiting_approval"}) for j in (approved_id, denied_id)]
    waiting = await one(server, org, approved_id, "job.awaiting_approval")
    assert waiting["approval_id"] == approved["approvalId"] and waiting["venue_name"] == "Le Bernardin"
    requested = await one(server, org, approved["approvalId"], "approval.requested")
    assert requested["subject_type"] == "job" and requested["subject_id"] == approved_id
    assert requested["status"] == "pending" and requested["venue_name"] == "Le Bernardin"

    await decide(org, approved["approvalId"], "approved")
    await decide(org, denied["approvalId"], "denied")
    assert (await one(server, org, approved["approvalId"], "approval.decided"))["decision"] == "approved"
    assert (await one(server, org, denied["approvalId"], "approval.decided"))["decision"] == "denied"
    assert (await wait(org.agent, approved_id))["status"] == "paused_payment"
    assert await types_of(server, org, approved_id) == ["job.created", "job.awaiting_approval",
                                                        "job.paused_payment"]
    failed = await one(server, org, denied_id, "job.failed")
    assert failed["reason"] == "error" and failed["detail"] == "approval_denied"
    assert failed["approval_id"] == denied["approvalId"]


async def test_an_expired_job_approval_reports_expired_and_the_failed_job(
    org: Org, server: Server, day: date
) -> None:
    await policy(org, {})
    job_id = await post(org.agent, hotel(day, "The Plaza"))
    waiting = await wait(org.agent, job_id, {"awaiting_approval"})
    async with server.db.unit_of_work() as session:
        await session.execute(update(Approval).where(Approval.id == waiting["approvalId"])
                              .values(expires_at=clock.now() - timedelta(seconds=1)))
    assert (await org.admin.get(APPROVALS)).status_code == 200  # listing expires the caller's due approvals
    assert (await one(server, org, waiting["approvalId"], "approval.expired"))["status"] == "expired"
    failed = await one(server, org, job_id, "job.failed")
    assert failed["detail"] == "approval_expired" and failed["scenario"] == "hotel"
    assert "approval.decided" not in await types_of(server, org, waiting["approvalId"])


async def test_a_cancelled_job_reports_cancelled_once_and_its_voided_approval_nothing(
    org: Org, server: Server, day: date
) -> None:
    await policy(org, {})
    job_id = await post(org.agent, hotel(day, "The Plaza", nights=2))
    waiting = await wait(org.agent, job_id, {"awaiting_approval"})
    assert (await org.agent.post(f"{JOBS}/{job_id}/cancel")).status_code == 200
    assert (await org.agent.post(f"{JOBS}/{job_id}/cancel")).status_code == 409
    cancelled = await one(server, org, job_id, "job.cancelled")
    assert cancelled["previous_status"] == "awaiting_approval"
    assert await types_of(server, org, waiting["approvalId"]) == ["approval.requested"]


# --- transactions ----------------------------------------------------------------------------


def booking(day: date, time: str, party_size: int, restaurant: str = "Le Bernardin") -> dict[str, Any]:
    return {"restaurantName": restaurant, "city": "New York", "partySize": party_size,
            "datetime": f"{day.isoformat()}T{time}:00", "customer": CUSTOMER}


async def test_a_booking_reports_confirmed_modified_and_cancelled_once_each(
    org: Org, server: Server, day: date
) -> None:
    booked = await org.agent.post(BOOK, json=booking(day, "19:00", 2))
    assert booked.status_code == 201, booked.text
    txn_id = booked.json()["transactionId"]
    confirmed = await one(server, org, txn_id, "transaction.confirmed")
    assert confirmed["status"] == "confirmed" and confirmed["venue_name"] == "Le Bernardin"
    assert confirmed["party_size"] == 2 and confirmed["amount_usd"] == 450.0
    modified = await org.agent.post(MODIFY, json={"transaction_id": txn_id, "updates": {"partySize": 3}})
    assert modified.status_code == 200, modified.text
    assert (await one(server, org, txn_id, "transaction.modified"))["party_size"] == 3
    cancelled = await org.agent.post(CANCEL, json={"transaction_id": txn_id, "reason": "Jane Doe is ill"})
    assert cancelled.status_code == 200, cancelled.text
    assert (await one(server, org, txn_id, "transaction.cancelled"))["status"] == "cancelled"
    again = await org.agent.post(CANCEL, json={"transaction_id": txn_id})
    assert again.status_code == 409
    assert await types_of(server, org, txn_id) == ["transaction.confirmed", "transaction.modified",
                                                   "transaction.cancelled"]


async def test_a_booking_awaiting_approval_reports_the_approval_then_the_confirmation(
    org: Org, server: Server, day: date
) -> None:
    await policy(org, {"threshold": 1000})
    pending = await org.agent.post(BOOK, json=booking(day, "19:00", 6))
    assert pending.status_code == 202, pending.text
    txn_id, approval_id = pending.json()["transactionId"], pending.json()["approval"]["approvalId"]
    assert await types_of(server, org, txn_id) == []
    requested = await one(server, org, approval_id, "approval.requested")
    assert requested["subject_type"] == "transaction" and requested["amount_usd"] == 1350.0
    await decide(org, approval_id, "approved")
    assert (await one(server, org, approval_id, "approval.decided"))["decision"] == "approved"
    assert (await one(server, org, txn_id, "transaction.confirmed"))["party_size"] == 6

    denied = await org.agent.post(BOOK, json=booking(day, "20:00", 6))
    assert denied.status_code == 202, denied.text
    await decide(org, denied.json()["approval"]["approvalId"], "denied")
    assert await types_of(server, org, denied.json()["transactionId"]) == []  # never confirmed


async def test_a_booking_whose_record_fails_records_no_event(org: Org, server: Server, day: date) -> None:
    organization_id = await org_id(server, org)
    before = await events(server, org)
    async with triggers.failing_writes(server, "transactions", "INSERT",
                                       f"NEW.organization_id = '{organization_id}'"):
        failed = await org.agent.post(BOOK, json=booking(day, "21:00", 2))
        assert failed.status_code == 503, failed.text
    assert await events(server, org) == before


async def test_events_are_read_only_within_their_organization_and_mode(
    org: Org, server: Server, day: date
) -> None:
    live = await org.agent.post(BOOK, json=booking(day, "18:00", 2))
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {org.test_key}"}) as test_client:
        test = await test_client.post(BOOK, json=booking(day, "18:30", 2))
    assert live.status_code == test.status_code == 201, (live.text, test.text)
    live_events, test_events = await events(server, org), await events(server, org, env="test")
    assert [e.subject_id for e in live_events] == [live.json()["transactionId"]]
    assert [e.subject_id for e in test_events] == [test.json()["transactionId"]]
    assert {e.env for e in live_events} == {"live"} and {e.env for e in test_events} == {"test"}
    async with server.db.unit_of_work(read_only=True) as session:
        assert await outbox_service.events_for(session, organization_id="org_nobody", env="live") == []
