"""What jobs leave behind: provider metrics, what test keys may reach, and personal data kept out of sight."""

import json
from datetime import date
from typing import Any

import httpx
from sqlalchemy import text

from tests.api.execution.support import FLYER, flight, metrics, restaurant, run, run_all, tried
from tests.conftest import Org, Server, mint_key


async def test_a_test_key_books_through_sandbox_providers_only(server: Server, org: Org, day: date) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 headers={"Authorization": f"Bearer {org.test_key}"}) as tester:
        providers = (await tester.get("/api/v1/providers")).json()["providers"]
        (dinner, dinner_events), (fare, fare_events) = await run_all(tester, [
            restaurant(day, "Gramercy Tavern"), flight(day, "Chicago", "Paris"),
        ])
    enabled = {p["id"] for p in providers if p["enabled"]}
    assert {"sandbox-tables", "sandbox-dine", "sandbox-air", "sandbox-fares"} <= enabled
    assert all(p["sandbox"] for p in providers if p["enabled"]), providers
    sandbox = {p["id"] for p in providers if p["sandbox"]}
    assert dinner["status"] == "completed" and fare["status"] == "paused_payment", (dinner, fare)
    assert set(tried(dinner_events)) | set(tried(fare_events)) <= sandbox
    assert (dinner["attemptCount"], dinner["usedFallback"]) == (2, True)
    assert (fare["attemptCount"], fare["usedFallback"]) == (2, True)


async def test_provider_outcomes_feed_the_metrics(
    server: Server, org: Org, day: date, api_only: dict[str, Any]
) -> None:
    assert (await metrics(org.agent, "sandbox-tables"))["totalAttempts"] == 0
    # Gramercy Tavern: a login wall at sandbox-tables (failed), booked at sandbox-dine (accepted).
    await run_all(org.agent, [restaurant(day, "Gramercy Tavern"), restaurant(day, "Le Bernardin")])
    tables, dine = await metrics(org.agent, "sandbox-tables"), await metrics(org.agent, "sandbox-dine")
    assert (tables["totalAttempts"], tables["acceptedCount"], tables["failedCount"]) == (2, 1, 1), tables
    assert tables["successRate"] == 0.5 and tables["manualOverrideCount"] == 0
    assert (dine["totalAttempts"], dine["acceptedCount"], dine["failedCount"], dine["successRate"]) == (1, 1, 0, 1.0)
    for m in (tables, dine):
        assert m["lastEventAt"] and m["timeRangeDays"] == 30
        assert m["successRate"] == round(m["acceptedCount"] / m["totalAttempts"], 4)
    await run(org.agent, restaurant(day, "Tatiana", consent=api_only))  # a login wall at both
    after = await metrics(org.agent, "sandbox-dine")
    assert (after["totalAttempts"], after["failedCount"], after["successRate"]) == (2, 1, 0.5), after
    stranger = await mint_key(server, f"{org.name} stranger")
    theirs = await org.agent.get("/api/v1/metrics/providers/sandbox-tables",
                                 headers={"Authorization": f"Bearer {stranger}"})
    assert theirs.json()["totalAttempts"] == 0  # metrics are the organization's own


async def test_the_profile_is_encrypted_at_rest_and_never_in_the_audit(server: Server, org: Org, day: date) -> None:
    secrets = [FLYER["email"], FLYER["passport_number"], FLYER["phone"], FLYER["dob"]]
    done, events = await run(org.agent, flight(day, "New York", "San Francisco"))
    assert done["status"] == "paused_payment", done
    async with server.db.engine.connect() as conn:
        found = await conn.execute(text("SELECT profile FROM jobs WHERE id = :id"), {"id": done["jobId"]})
        stored = found.scalar_one()
    assert stored and isinstance(stored, str)
    for secret in secrets:
        assert secret not in stored, f"{secret} is stored in clear"
    shown = json.dumps(events) + json.dumps(done)
    for secret in secrets:
        assert secret not in shown, f"{secret} appears in the job or its audit"
