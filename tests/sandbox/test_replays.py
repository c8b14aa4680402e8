"""A provider answers a replayed Idempotency-Key with its first booking, whatever happened since.

Every test books on a date of its own. The sandbox runs in this process, so a test can
book "in the past" by setting the clock back for the first call.
"""

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from errand.kit import clock
from errand.kit.errors import DomainError
from errand.providers.base import Guest
from errand.providers.sandbox import SandboxTables

BERNARDIN = "rst_le-bernardin-new-york"
ADA = Guest(name="Ada Lovelace", email="ada@example.com")


async def test_a_replay_is_answered_after_its_slot_has_passed(
    tables: SandboxTables, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"test-{uuid.uuid4()}"
    start = datetime(2025, 3, 4, 19, 0)  # a Tuesday, long past
    with monkeypatch.context() as then:
        then.setattr(clock, "now", lambda: datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
        first = await tables.book(BERNARDIN, start, 2, ADA, idempotency_key=key)
    assert first.status == "booked"

    # Now the slot has passed: a new booking of it is refused, the replay is the first booking.
    with pytest.raises(DomainError) as refused:
        await tables.book(BERNARDIN, start, 2, ADA, idempotency_key=f"test-{uuid.uuid4()}")
    assert "already passed" in refused.value.message
    assert await tables.book(BERNARDIN, start, 2, ADA, idempotency_key=key) == first
    with pytest.raises(DomainError) as other_body:
        await tables.book(BERNARDIN, start, 3, ADA, idempotency_key=key)
    assert other_body.value.details["provider_error"] == "idempotency_conflict"
    assert (await http.get(f"/reservations/{first.reservation_id}")).json()["party_size"] == 2


async def test_a_replay_of_a_booking_that_filled_its_slot_is_the_booking(tables: SandboxTables) -> None:
    key = f"test-{uuid.uuid4()}"
    start = datetime(2027, 6, 8, 19, 0)
    first = await tables.book(BERNARDIN, start, 6, ADA, idempotency_key=key)
    await tables.book(BERNARDIN, start, 4, ADA, idempotency_key=f"test-{uuid.uuid4()}")  # the slot is full now
    assert await tables.book(BERNARDIN, start, 6, ADA, idempotency_key=key) == first
