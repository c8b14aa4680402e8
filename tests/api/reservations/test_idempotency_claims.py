"""The idempotency claim: one statement takes a key, and the answer is stored with the change.

A record's age cannot be waited out in a test, so expiry and a dead holder are staged by
ageing the key's record through the test's own database connection; a failing write is a
database trigger for this test's organization only. Everything else goes through HTTP, and
capacity at the provider (Le Bernardin seats 10 covers a slot) witnesses how often it booked.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select, update

from errand.kit import clock
from errand.models import IdempotencyRecord, Organization, Transaction
from tests.api.reservations.test_idempotency import BOOK, booking, key, remaining
from tests.api.reservations import triggers
from tests.conftest import Org, Server


async def org_id(server: Server, org: Org) -> str:
    async with server.db.unit_of_work(read_only=True) as session:
        return (await session.execute(select(Organization.id).where(Organization.name == org.name))).scalar_one()


async def transactions(server: Server, org: Org) -> int:
    """How many bookings Errand recorded for the organization."""
    organization_id = await org_id(server, org)
    async with server.db.unit_of_work(read_only=True) as session:
        return (await session.execute(
            select(func.count()).select_from(Transaction).where(Transaction.organization_id == organization_id)
        )).scalar_one()


async def age_record(server: Server, org: Org, k: str, **values: Any) -> None:
    """Set columns of the organization's record for key ``k`` (as time passing or a dead holder would)."""
    organization_id = await org_id(server, org)
    async with server.db.unit_of_work() as session:
        changed = await session.execute(update(IdempotencyRecord).where(
            IdempotencyRecord.organization_id == organization_id, IdempotencyRecord.key == k).values(**values))
        assert changed.rowcount == 1


@asynccontextmanager
async def failing_completions(server: Server, org: Org) -> AsyncIterator[None]:
    """While inside, storing any answer under this organization's keys fails in the database."""
    when = f"NEW.organization_id = '{await org_id(server, org)}' AND NEW.state = 'completed'"
    async with triggers.failing_writes(server, "idempotency_records", "UPDATE", when):
        yield


async def test_fifty_parallel_requests_with_one_key_book_once_and_the_rest_replay_or_conflict(
    server: Server, org: Org, day: date
) -> None:
    k = key()
    body = booking(day, "19:00", 6)

    responses = await asyncio.gather(*[
        org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k}) for _ in range(50)
    ])

    made = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    replayed = [r for r in responses if r.status_code == 201 and r.headers.get("Idempotent-Replayed") == "true"]
    refused = [r for r in responses if r.status_code == 409 and r.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"]
    assert len(made) == 1, [r.text for r in responses]
    assert len(made) + len(replayed) + len(refused) == 50, [r.text for r in responses]
    assert {json.dumps(r.json(), sort_keys=True) for r in made + replayed} == {json.dumps(made[0].json(), sort_keys=True)}
    assert await transactions(server, org) == 1
    assert await remaining(org.agent, day, "19:00") == 4


async def test_an_expired_key_is_claimed_afresh_even_with_another_body(server: Server, org: Org, day: date) -> None:
    k = key()
    first = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})
    assert first.status_code == 201, first.text
    await age_record(server, org, k, expires_at=clock.now() - timedelta(seconds=1))

    again = await org.agent.post(BOOK, json=booking(day, "20:00", 2), headers={"Idempotency-Key": k})

    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["transactionId"] != first.json()["transactionId"]
    replay = await org.agent.post(BOOK, json=booking(day, "20:00", 2), headers={"Idempotency-Key": k})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == again.json()
    assert await remaining(org.agent, day, "19:00") == 4
    assert await remaining(org.agent, day, "20:00") == 8


async def test_an_expired_key_with_the_same_body_books_anew_rather_than_recording_the_first_booking_twice(
    server: Server, org: Org, day: date
) -> None:
    k = key()
    first = await org.agent.post(BOOK, json=booking(day, "19:00", 2), headers={"Idempotency-Key": k})
    assert first.status_code == 201, first.text
    await age_record(server, org, k, expires_at=clock.now() - timedelta(seconds=1))

    again = await org.agent.post(BOOK, json=booking(day, "19:00", 2), headers={"Idempotency-Key": k})

    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    # A booking of its own at the provider: two transactions, two reservations, capacity taken twice.
    assert again.json()["transactionId"] != first.json()["transactionId"]
    assert again.json()["reservation"]["reservationId"] != first.json()["reservation"]["reservationId"]
    assert await remaining(org.agent, day, "19:00") == 6


async def test_a_stale_claim_is_taken_over_and_the_retry_finds_the_providers_booking(
    server: Server, org: Org, day: date
) -> None:
    k = key()
    first = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})
    assert first.status_code == 201, first.text
    # As if the request had died after the provider booked and before anything was stored.
    stale = clock.now() - timedelta(seconds=server.settings.idempotency_stale_seconds + 1)
    await age_record(server, org, k, state="in_progress", result=None, lock_token="dead-holder", locked_at=stale)

    other = await org.agent.post(BOOK, json=booking(day, "19:00", 2), headers={"Idempotency-Key": k})
    assert other.status_code == 409 and other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT", other.text

    retried = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})

    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.json()["reservation"]["reservationId"] == first.json()["reservation"]["reservationId"]
    assert await remaining(org.agent, day, "19:00") == 4
    replay = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == retried.json()


async def test_a_booking_whose_answer_cannot_be_stored_is_not_recorded_and_its_retry_books_once(
    server: Server, org: Org, day: date
) -> None:
    k = key()
    async with failing_completions(server, org):
        failed = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})
        assert failed.status_code == 503, failed.text
        assert "retry" in failed.json()["error"]["message"].lower()
        # The answer and the booking's record commit together: neither was kept.
        assert await transactions(server, org) == 0

    retried = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})

    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert await transactions(server, org) == 1
    assert await remaining(org.agent, day, "19:00") == 4
    replay = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == retried.json()
