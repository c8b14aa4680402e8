"""Personal data sealed everywhere: whatever surface it came through, the database holds ciphertext only.

Each test books with a person of its own (distinctive name, email, phone, passport number,
date of birth), then reads the database through the test's own connection, the way a dump
or a backup would show it, and looks for those strings in every column of every table.
"""

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from errand.kit import logging as errand_logging
from errand.models import IdempotencyRecord

from tests.api.execution.support import job, post, wait
from tests.browser.support import eventually
from tests.conftest import Org, Server, free_port, running, signed_provider_event
from tests.mcp.conftest import Connect, mcp, ok  # noqa: F401  (mcp: the fixture)
from tests.sealed import clear_text_leaks

BOOK = "/api/v1/agent/restaurant/book"
MODIFY = "/api/v1/agent/restaurant/modify"
CANCEL = "/api/v1/agent/restaurant/cancel"
TEST_CARD = {"card_number": "4242 4242 4242 4242", "expiry": "12/35", "cvc": "123"}


def person() -> dict[str, str]:
    """Someone no other test books for: each value is a string no other row contains."""
    tag = secrets.token_hex(3)
    digits = str(int(tag, 16) % 10_000_000).zfill(7)
    return {
        "first_name": "Zebedee", "last_name": f"Quillfeather{tag}", "email": f"zq.{tag}@sealed.example",
        "phone": f"+1555{digits}", "passport_number": f"QF{digits}", "dob": "1931-02-27",
    }


def needles(who: dict[str, str]) -> list[str]:
    """The strings that must never be stored in clear (the phone also without its '+')."""
    return [who["last_name"], who["email"], who["phone"].lstrip("+"), who["passport_number"], who["dob"]]


def customer(who: dict[str, str]) -> dict[str, str]:
    """The person as the reservations dialect takes a customer."""
    return {"name": f"{who['first_name']} {who['last_name']}", "email": who["email"], "phone": who["phone"]}


def booking(day: date, who: dict[str, str], time: str = "19:00", party_size: int = 2,
            restaurant: str = "Golden Gate Grill", city: str = "San Francisco") -> dict[str, Any]:
    return {"restaurantName": restaurant, "city": city, "partySize": party_size,
            "datetime": f"{day.isoformat()}T{time}:00", "customer": customer(who)}


def traveler(who: dict[str, str]) -> dict[str, str]:
    """The person as an execution job's profile (flights: with passport details)."""
    return {"first_name": who["first_name"], "last_name": who["last_name"], "email": who["email"],
            "phone": who["phone"], "dob": who["dob"], "passport_number": who["passport_number"],
            "passport_country": "US"}



def reporting_the_guest(event: dict[str, Any], who: dict[str, str]) -> dict[str, Any]:
    """``event`` as a provider may send it, naming the guest (fields Errand has no use for)."""
    return {**event, "guest": customer(who), "passport_number": who["passport_number"], "dob": who["dob"]}


async def stored_result(server: Server, idempotency_key: str) -> str:
    """The idempotency record's result column as stored, without Errand's decryption."""
    async with server.db.engine.connect() as conn:
        return (await conn.execute(
            text("SELECT CAST(result AS TEXT) FROM idempotency_records WHERE key = :key"), {"key": idempotency_key},
        )).scalar_one()


async def cached_result(server: Server, idempotency_key: str) -> dict[str, Any]:
    """The idempotency record's result as Errand reads it (decrypted)."""
    async with server.db.unit_of_work(read_only=True) as session:
        return (await session.execute(
            select(IdempotencyRecord.result).where(IdempotencyRecord.key == idempotency_key))).scalar_one()


# --- idempotent responses ----------------------------------------------------------------


async def test_a_cached_idempotent_response_is_sealed_and_still_replays_in_full(
    server: Server, org: Org, day: date
) -> None:
    who, key = person(), f"idem-{secrets.token_hex(8)}"
    first = await org.agent.post(BOOK, json=booking(day, who), headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text

    assert who["email"] in json.dumps(await cached_result(server, key))  # what is cached carries the customer
    stored = await stored_result(server, key)
    assert isinstance(json.loads(stored), str), "the stored result should be one sealed string"
    assert not [s for s in needles(who) + ["Zebedee"] if s in stored]

    again = await org.agent.post(BOOK, json=booking(day, who), headers={"Idempotency-Key": key})
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


async def test_a_cached_error_is_sealed_and_replays_as_the_same_error(server: Server, org: Org, day: date) -> None:
    who, key = person(), f"idem-{secrets.token_hex(8)}"
    body = booking(day, who, restaurant=f"Nowhere {who['last_name']}")
    first = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 404, first.text

    stored = await stored_result(server, key)
    assert isinstance(json.loads(stored), str) and "error" not in stored and who["last_name"] not in stored

    again = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 404
    assert again.json() == first.json()


async def test_a_response_cached_in_clear_before_sealing_still_replays(server: Server, org: Org, day: date) -> None:
    """Rows an older Errand stored in clear are read as they are until they expire, never lost."""
    who, key = person(), f"idem-{secrets.token_hex(8)}"
    first = await org.agent.post(BOOK, json=booking(day, who), headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    clear = json.dumps(await cached_result(server, key))
    async with server.db.engine.begin() as conn:  # what an older Errand left behind
        cast = "CAST(:clear AS JSON)" if server.backend == "postgres" else ":clear"
        await conn.execute(text(f"UPDATE idempotency_records SET result = {cast} WHERE key = :key"),
                           {"clear": clear, "key": key})

    again = await org.agent.post(BOOK, json=booking(day, who), headers={"Idempotency-Key": key})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


# --- every table, through every surface --------------------------------------------------


async def test_bookings_modifications_and_cancellations_store_no_personal_data_in_clear(
    server: Server, org: Org, day: date, mcp: Connect
) -> None:
    who, moved = person(), person()
    booked = await org.agent.post(BOOK, json=booking(day, who), headers={"Idempotency-Key": secrets.token_hex(8)})
    assert booked.status_code == 201, booked.text
    txn = booked.json()["transactionId"]
    modified = await org.agent.post(MODIFY, json={"transactionId": txn, "updates": {"customer": customer(moved)}},
                                    headers={"Idempotency-Key": secrets.token_hex(8)})
    assert modified.status_code == 200, modified.text
    cancelled = await org.agent.post(CANCEL, json={"transactionId": txn, "reason": "plans changed"},
                                     headers={"Idempotency-Key": secrets.token_hex(8)})
    assert cancelled.status_code == 200, cancelled.text

    over_mcp = person()
    async with mcp(org.agent_key) as session:
        booked_mcp = ok(await session.call_tool("book_reservation", {
            **booking(day, over_mcp, time="12:00"), "idempotency_key": secrets.token_hex(8)}))
    assert booked_mcp["status"] == "confirmed"

    assert await clear_text_leaks(server, needles(who) + needles(moved) + needles(over_mcp)) == []


async def test_a_booking_held_for_approval_stores_no_personal_data_in_clear(
    server: Server, org: Org, day: date
) -> None:
    who = person()
    policy = await org.admin.post("/api/v1/policies", json={
        "name": "Ask above 1000", "type": "APPROVAL_REQUIRED", "config": {"threshold": 1000}})
    assert policy.status_code == 201, policy.text
    try:
        held = await org.agent.post(BOOK, json=booking(day, who, party_size=6, restaurant="Le Bernardin",
                                                       city="New York"))
        assert held.status_code == 202, held.text
        approvals = (await org.admin.get("/api/approvals", params={"status": "pending"})).json()["approvals"]
        mine = [a for a in approvals if a.get("transaction_id") == held.json()["transactionId"]]
        assert len(mine) == 1, approvals
        decided = await org.admin.post(f"/api/approvals/{mine[0]['id']}/decision", json={"decision": "approved"})
        assert decided.status_code == 200, decided.text
    finally:
        await org.admin.delete(f"/api/v1/policies/{policy.json()['id']}")

    assert await clear_text_leaks(server, needles(who)) == []


async def test_execution_jobs_profiles_and_provider_events_store_no_personal_data_in_clear(
    server: Server, org: Org, day: date
) -> None:
    inline, saved = person(), person()
    profile = await org.agent.post("/api/v1/profiles", json=traveler(saved))
    assert profile.status_code == 201, profile.text
    api_only = {"allowedProviders": ["sandbox-tables", "sandbox-air"], "allowVenueSwitch": False}
    restaurant = job("restaurant", {"restaurant_name": "Le Bernardin", "city": "New York", "date": str(day),
                                    "time": "19:00", "covers": 2}, api_only, traveler(inline))
    flight = job("flight", {"origin": "New York", "dest": "San Francisco", "date": str(day), "passengers": 1},
                 api_only)
    flight.pop("profile")
    flight["profileId"] = profile.json()["profileId"]
    ids = [await post(org.agent, restaurant), await post(org.agent, flight)]
    done = await asyncio.gather(*(wait(org.agent, job_id) for job_id in ids))
    assert [d["status"] for d in done] == ["paused_payment", "paused_payment"], done

    async with httpx.AsyncClient(timeout=30) as end_user:  # the traveler pays at the provider's page
        paid = await end_user.post(done[0]["handoffUrl"], data=TEST_CARD)
    assert paid.status_code == 200, paid.text
    await eventually(org.agent, ids[0], "payment_completed")
    # A provider that names the guest in its event: Errand keeps only what it uses.
    chatty = person()
    raw, headers = signed_provider_event(server, reporting_the_guest({
        "type": "hold_expired", "provider_id": "sandbox-air", "hold_id": done[1]["result"]["holdId"]}, chatty))
    assert (await org.agent.post("/api/v1/provider-events", content=raw, headers=headers)).status_code < 300
    await eventually(org.agent, ids[1], "hold_expired")

    assert await clear_text_leaks(server, needles(inline) + needles(saved) + needles(chatty)) == []


# --- logs --------------------------------------------------------------------------------


@pytest.fixture
async def debug_url(server: Server, caplog: pytest.LogCaptureFixture) -> AsyncIterator[str]:
    """A second server over the test server's database, Errand's logs and the root logger at DEBUG."""
    caplog.set_level(logging.DEBUG)
    settings = server.settings.model_copy(update={"port": free_port(), "log_level": "DEBUG"})
    try:
        async with running(settings) as base_url:
            yield base_url
    finally:
        errand_logging.configure(server.settings.log_level)


async def test_logs_carry_no_personal_data_through_bookings_jobs_and_refusals(
    server: Server, debug_url: str, org: Org, day: date,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    """Everything the process logs (Errand's logs, the libraries', the servers'), while personal data passes through."""
    who, traveller, refused = person(), person(), person()
    key = secrets.token_hex(8)
    async with httpx.AsyncClient(base_url=debug_url, timeout=30,
                                 headers={"Authorization": f"Bearer {org.agent_key}"}) as agent:
        for _ in range(2):  # booked, then replayed
            booked = await agent.post(BOOK, json=booking(day, who), headers={"Idempotency-Key": key})
            assert booked.status_code == 201, booked.text
        txn = booked.json()["transactionId"]
        changed = await agent.post(MODIFY, json={"transactionId": txn, "updates": {"partySize": 3}})
        assert changed.status_code == 200, changed.text
        bad = {**booking(day, refused), "customer": {**customer(refused), "email": f"no {refused['email']}"}}
        assert (await agent.post(BOOK, json=bad)).status_code == 400
        assert (await agent.post("/api/v1/profiles", json={**traveler(refused), "phone": "x"})).status_code == 400
        body = job("restaurant", {"restaurant_name": "Le Bernardin", "city": "New York", "date": str(day),
                                  "time": "20:00", "covers": 2},
                   {"allowedProviders": ["sandbox-tables"], "allowVenueSwitch": False}, traveler(traveller))
        done = await wait(agent, await post(agent, body))
        assert done["status"] == "paused_payment", done
        raw, headers = signed_provider_event(server, reporting_the_guest({  # for no job Errand knows: logged
            "type": "payment_completed", "provider_id": "sandbox-tables", "hold_id": "hold_nobody"}, refused))
        assert (await agent.post("/api/v1/provider-events", content=raw, headers=headers)).status_code < 300

    out, err = capfd.readouterr()
    logged = "\n".join([out, err, caplog.text])
    assert "provider_event_unmatched" in logged, "the capture does not see the server's logs"
    assert [s for s in needles(who) + needles(traveller) + needles(refused) if s in logged] == []


# --- snapshots stored before sealing -----------------------------------------------------


async def test_a_snapshot_stored_in_clear_before_sealing_is_still_served(server: Server, org: Org, day: date) -> None:
    """Snapshots an older Errand stored as plain PNG stay readable; new ones are sealed (tests/browser)."""
    job_id = await post(org.agent, job("restaurant", {"restaurant_name": "Le Bernardin", "city": "New York",
                                                      "date": str(day), "time": "19:00", "covers": 2},
                                       {"allowedProviders": ["sandbox-tables"]}))
    await wait(org.agent, job_id)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # only its signature matters here
    async with server.db.engine.begin() as conn:  # what an older Errand left behind
        organization_id = (await conn.execute(text("SELECT organization_id FROM jobs WHERE id = :id"),
                                              {"id": job_id})).scalar_one()
        await conn.execute(text(
            "INSERT INTO job_snapshots (id, organization_id, job_id, step, url, created_at, png) "
            "VALUES (:id, :org, :job, 'old/step', 'http://example.test/', CURRENT_TIMESTAMP, :png)"),
            {"id": f"snap_old{secrets.token_hex(4)}", "org": organization_id, "job": job_id, "png": png})
    listed = (await org.agent.get(f"/api/v1/execution-jobs/{job_id}/snapshots")).json()["snapshots"]
    old = next(s for s in listed if s["step"] == "old/step")
    image = await org.agent.get(f"/api/v1/execution-jobs/{job_id}/snapshots/{old['snapshotId']}/image")
    assert image.status_code == 200 and image.content == png
