"""The steps of a modify, tested directly (no server): how a requested change is worked out
against what the caller sees of the booking."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from errand.bookings.modify import _work_out
from errand.bookings.schemas import BookingChanges, CustomerPatch
from errand.kit import clock
from errand.kit.errors import InvalidRequest
from errand.models import Transaction

TZ = "America/New_York"


def _txn(**overrides: Any) -> Transaction:
    now = clock.now()
    starts = (now + timedelta(days=10)).replace(hour=23, minute=0, second=0, microsecond=0)  # 19:00 in New York
    fields: dict[str, Any] = dict(
        id="txn_1", organization_id="org_1", env="live", scenario="restaurant", status="confirmed",
        provider_id="sandbox-tables", venue_id="v1", venue_name="Golden Gate Grill", city="New York", timezone=TZ,
        party_size=2, starts_at=starts, price_per_person_usd=Decimal("50.00"), amount_usd=Decimal("100.00"),
        customer={"name": "Ada", "email": "ada@example.com", "phone": None}, reservation_id="res_1",
        confirmation="C1", pending_action=None, cancelled_at=None, cancel_reason=None, created_at=now, updated_at=now,
    )
    return Transaction(**(fields | overrides))


def test_a_customer_only_change_keeps_the_slot() -> None:
    change = _work_out(_txn(), BookingChanges(customer=CustomerPatch(phone="+15551234567")))
    assert not change.slot_changed
    assert change.customer == {"name": "Ada", "email": "ada@example.com", "phone": "+15551234567"}
    assert change.guest.phone == "+15551234567"
    assert (change.party_size, change.amount, change.requested) == (2, Decimal("100.00"), ["customer"])


def test_a_new_party_size_changes_the_slot_and_the_amount() -> None:
    change = _work_out(_txn(), BookingChanges(party_size=5))
    assert change.slot_changed
    assert (change.party_size, change.amount, change.requested) == (5, Decimal("250.00"), ["partySize"])


def test_a_pending_change_is_what_the_caller_sees_as_current() -> None:
    txn = _txn(status="requires_approval")
    local = (clock.now() + timedelta(days=20)).replace(hour=20, minute=0, second=0, microsecond=0, tzinfo=None)
    txn.pending_action = {"kind": "modify", "action": {"localStart": local.isoformat(timespec="minutes"),
                                                       "partySize": 4}}
    same = _work_out(txn, BookingChanges(party_size=4, starts_at=local))
    assert not same.slot_changed
    assert same.local == local


def test_a_new_time_in_the_past_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidRequest) as refused:
        _work_out(_txn(), BookingChanges(starts_at=datetime(2020, 1, 1, 19, 0)))
    assert refused.value.details[0]["field"] == "updates.datetime"
