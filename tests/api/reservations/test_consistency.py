"""Two-step operations stay consistent when their second step fails.

Cancelling, booking and changing a reservation call the provider first and write Errand's
record after. Here a database trigger makes that write fail for real (on SQLite and on
PostgreSQL), for one organization's rows only, until the test drops it: the provider has
acted, Errand could not record it. What must hold: the answer is a 503 that says to
retry, nothing reads ``confirmed`` once the provider let the table go, and a retry
converges on one consistent outcome without acting twice at the provider.
"""

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from errand.bookings import service as bookings_service
from errand.kit import clock
from errand.composition import build_core
from errand.models import Organization, Transaction
from tests.api.conftest import Book, BookingRequest
from tests.api.reservations import triggers
from tests.conftest import Org, Server
from tests.sandbox.api_support import server_credentials

BOOK = "/api/v1/agent/restaurant/book"
CANCEL = "/api/v1/agent/restaurant/cancel"
MODIFY = "/api/v1/agent/restaurant/modify"
GOLDEN_GATE = "rst_golden-gate-grill-san-francisco"

Failing = Callable[..., AbstractAsyncContextManager[None]]


@pytest.fixture
def failing_writes(server: Server, org: Org) -> Failing:
    """``async with failing_writes(event, condition, times=None)``: each ``event`` (INSERT or UPDATE)
    on the transactions table of this test's organization whose new row meets ``condition`` fails,
    every time, or only the first ``times`` times (PostgreSQL only: a sequence counts the failures
    across the rolled-back transactions; SQLite has nothing that survives a rollback)."""

    @asynccontextmanager
    async def install(event: str, condition: str, times: int | None = None) -> AsyncIterator[None]:
        async with server.db.unit_of_work(read_only=True) as session:
            org_id = (await session.execute(select(Organization.id).where(Organization.name == org.name))).scalar_one()
        async with triggers.failing_writes(server, "transactions", event,
                                           f"NEW.organization_id = '{org_id}' AND ({condition})", times):
            yield

    return install


async def at_provider(client: httpx.AsyncClient, booked: dict[str, Any]) -> str:
    """The reservation's status in the provider's own ledger."""
    response = await client.get(
        f"/sandbox/api/{booked['providerId']}/reservations/{booked['reservation']['reservationId']}",
        auth=server_credentials())
    assert response.status_code == 200, response.text
    return response.json()["status"]


async def remaining(client: httpx.AsyncClient, day: date, time: str) -> int:
    response = await client.get(f"/sandbox/api/sandbox-tables/restaurants/{GOLDEN_GATE}/availability",
                                params={"date": day.isoformat(), "party_size": 1}, auth=server_credentials())
    assert response.status_code == 200, response.text
    return next((s["remaining"] for s in response.json()["slots"] if s["time"] == time), 0)


async def detail(org: Org, transaction_id: str) -> dict[str, Any]:
    response = await org.agent.get(f"/api/v1/transactions/{transaction_id}")
    assert response.status_code == 200, response.text
    return response.json()


def events(body: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [e for e in body["events"] if e["type"] == type_]


@pytest.mark.parametrize("same_key", [True, False], ids=["same-idempotency-key", "plain-retry"])
async def test_cancel_whose_record_fails_never_reads_confirmed_and_a_retry_finishes_it(
    org: Org, book: Book, failing_writes: Failing, same_key: bool
) -> None:
    booked = await book("20:00", 3)
    txn_id = booked["transactionId"]
    headers = {"Idempotency-Key": f"cancel-{txn_id}"} if same_key else {}
    async with failing_writes("UPDATE", "NEW.status = 'cancelled'"):
        failed = await org.agent.post(CANCEL, json={"transactionId": txn_id, "reason": "plans changed"},
                                      headers=headers)
        assert failed.status_code == 503, failed.text
        assert failed.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert "retry" in failed.json()["error"]["message"].lower()
        # The provider let the table go; Errand does not claim otherwise.
        assert await at_provider(org.agent, booked) == "cancelled"
        meanwhile = await detail(org, txn_id)
        assert meanwhile["status"] == "cancelled", meanwhile
        modify = await org.agent.post(MODIFY, json={"transactionId": txn_id, "updates": {"partySize": 2}})
        assert modify.status_code == 409, modify.text

    retried = await org.agent.post(CANCEL, json={"transactionId": txn_id, "reason": "plans changed"},
                                   headers=headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "cancelled"
    final = await detail(org, txn_id)
    assert final["status"] == "cancelled" and final["cancelReason"] == "plans changed"
    assert len(events(final, "transaction.cancelled")) == 1
    assert await at_provider(org.agent, booked) == "cancelled"
    again = await org.agent.post(CANCEL, json={"transactionId": txn_id, "reason": "plans changed"},
                                 headers=headers)
    if same_key:
        assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    else:
        assert again.status_code == 409 and again.json()["error"]["code"] == "INVALID_STATE"


async def test_booking_whose_record_fails_is_booked_once_by_a_retry_with_its_key(
    org: Org, day: date, booking_request: BookingRequest, failing_writes: Failing
) -> None:
    before = await remaining(org.agent, day, "21:00")
    body = booking_request("21:00", 4)
    headers = {"Idempotency-Key": f"book-{secrets.token_hex(4)}"}
    async with failing_writes("INSERT", "NEW.party_size = 4"):
        failed = await org.agent.post(BOOK, json=body, headers=headers)
        assert failed.status_code == 503, failed.text
    # The provider holds the table under the request's key, so a retry finds it rather than booking again.
    assert await remaining(org.agent, day, "21:00") == before - 4
    retried = await org.agent.post(BOOK, json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert await remaining(org.agent, day, "21:00") == before - 4
    assert await at_provider(org.agent, retried.json()) == "booked"
    assert (await detail(org, retried.json()["transactionId"]))["status"] == "confirmed"


async def test_booking_without_a_key_whose_record_fails_gives_the_table_back(
    org: Org, day: date, booking_request: BookingRequest, failing_writes: Failing
) -> None:
    before = await remaining(org.agent, day, "21:30")
    async with failing_writes("INSERT", "NEW.party_size = 5"):
        failed = await org.agent.post(BOOK, json=booking_request("21:30", 5))
        assert failed.status_code == 503, failed.text
    assert await remaining(org.agent, day, "21:30") == before


async def test_a_cancel_whose_record_fails_once_is_recorded_by_the_same_request(
    org: Org, book: Book, failing_writes: Failing
) -> None:
    booked = await book("20:30", 2)
    async with failing_writes("UPDATE", "NEW.status = 'cancelled'", times=1):
        cancelled = await org.agent.post(CANCEL, json={"transactionId": booked["transactionId"]})
        assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert await at_provider(org.agent, booked) == "cancelled"
    assert len(events(await detail(org, booked["transactionId"]), "transaction.cancelled")) == 1


async def test_an_interrupted_cancel_is_finished_by_the_background_sweep(
    server: Server, org: Org, book: Book, failing_writes: Failing
) -> None:
    booked = await book("22:00", 2)
    txn_id = booked["transactionId"]
    async with failing_writes("UPDATE", "NEW.status = 'cancelled'"):
        failed = await org.agent.post(CANCEL, json={"transactionId": txn_id, "reason": "ill"})
        assert failed.status_code == 503, failed.text
    async with server.db.unit_of_work() as session:  # the request that accepted it is long gone
        txn = (await session.execute(select(Transaction).where(Transaction.id == txn_id))).scalar_one()
        txn.pending_action = {**txn.pending_action, "requested_at": clock.iso(clock.now() - timedelta(minutes=5))}
    core = build_core(server.settings)
    try:
        await bookings_service.finish_interrupted_cancels(core)
    finally:
        await core.providers.aclose()
        await core.db.dispose()
    async with server.db.unit_of_work(read_only=True) as session:
        row = (await session.execute(select(Transaction).where(Transaction.id == txn_id))).scalar_one()
        assert (row.status, row.pending_action, row.cancel_reason) == ("cancelled", None, "ill")
    final = await detail(org, txn_id)
    assert final["status"] == "cancelled"
    assert len(events(final, "transaction.cancelled")) == 1


async def test_change_whose_record_fails_is_made_once_by_a_retry_with_its_key(
    org: Org, day: date, book: Book, failing_writes: Failing
) -> None:
    before = await remaining(org.agent, day, "18:00")
    booked = await book("18:00", 2)
    change = {"transactionId": booked["transactionId"], "updates": {"partySize": 4}}
    headers = {"Idempotency-Key": f"modify-{secrets.token_hex(4)}"}
    async with failing_writes("UPDATE", "NEW.status = 'modified'"):
        failed = await org.agent.post(MODIFY, json=change, headers=headers)
        assert failed.status_code == 503, failed.text
    retried = await org.agent.post(MODIFY, json=change, headers=headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "modified" and retried.json()["reservation"]["partySize"] == 4
    assert await remaining(org.agent, day, "18:00") == before - 4
    final = await detail(org, booked["transactionId"])
    assert final["status"] == "modified" and len(events(final, "transaction.modified")) == 1
