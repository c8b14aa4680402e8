"""The sandbox restaurant system through its HTTP API, driven by the SandboxTables adapter.

Every test books on a date of its own (all in 2027), so no two tests share a slot.
Le Bernardin: 17:00–22:30, a slot every 30 minutes, 10 covers per slot, parties up to 6.
"""

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from errand.kit.db import Database
from errand.kit.errors import DomainError
from errand.models.sandbox_booking import SandboxSlot
from errand.providers.base import Guest, Reservation
from errand.providers.errors import NoAvailability, ProviderNotFound, ProviderUnavailable, VenueUnknown
from errand.providers.sandbox import SandboxTables
from errand.sandbox.app import build_sandbox_app
from errand.sandbox.service import release_expired_holds
from tests.sandbox.conftest import SETTINGS

BERNARDIN = "rst_le-bernardin-new-york"
MOMOFUKU_KO = "rst_momofuku-ko-new-york"  # closed on Mondays
ADA = Guest(name="Ada Lovelace", email="ada@example.com", phone="+1 212 555 0100")


def key() -> str:
    return f"test-{uuid.uuid4()}"


def at(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}")


async def remaining(http: httpx.AsyncClient, day: str, party_size: int = 1, venue: str = BERNARDIN) -> dict[str, int]:
    response = await http.get(f"/restaurants/{venue}/availability", params={"date": day, "party_size": party_size})
    assert response.status_code == 200, response.text
    return {slot["time"]: slot["remaining"] for slot in response.json()["slots"]}


async def book(tables: SandboxTables, day: str, hhmm: str, party_size: int) -> Reservation:
    return await tables.book(BERNARDIN, at(day, hhmm), party_size, ADA, idempotency_key=key())


async def test_find_venue_matches_name_and_city_ignoring_case(tables: SandboxTables) -> None:
    venue = await tables.find_venue("le bernardin", "NEW YORK")
    assert venue is not None
    assert (venue.id, venue.name, venue.timezone, venue.max_party_size) == (
        BERNARDIN, "Le Bernardin", "America/New_York", 6
    )
    with pytest.raises(VenueUnknown) as unknown:
        await tables.find_venue("Le Bernadin", "New York")
    assert unknown.value.suggestions == ["Le Bernardin"]
    with pytest.raises(VenueUnknown) as elsewhere:
        await tables.find_venue("Le Bernardin", "Paris")
    assert "Le Bernardin" not in elsewhere.value.suggestions  # suggestions stay in the city asked about


@pytest.mark.parametrize("spelling", ["L'Arpège", "L’Arpege", "L'Arpege", "  l`ARPÈGE ", "L\u02bcArpe\u0300ge"])
async def test_find_venue_ignores_accents_apostrophe_styles_and_spacing(tables: SandboxTables, spelling: str) -> None:
    venue = await tables.find_venue(spelling, " paris ")
    assert venue is not None and (venue.id, venue.name) == ("rst_l-arpege-paris", "L'Arpège")


async def test_booking_seats_the_party_and_takes_its_covers(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    reservation = await book(tables, "2027-02-01", "19:00", 4)
    assert reservation.status == "booked"
    assert reservation.start == "2027-02-01T19:00"
    assert reservation.confirmation and reservation.confirmation.startswith("SBX-")
    assert (await remaining(http, "2027-02-01"))["19:00"] == 6
    stored = (await http.get(f"/reservations/{reservation.reservation_id}")).json()
    assert stored["status"] == "booked" and stored["party_size"] == 4


async def test_capacity_cannot_be_oversold(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    outcomes = await asyncio.gather(
        *(book(tables, "2027-02-02", "19:00", 1) for _ in range(50)), return_exceptions=True
    )
    booked = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, NoAvailability)]
    assert (len(booked), len(refused)) == (10, 40), [o for o in outcomes if isinstance(o, Exception)][:3]
    assert "19:00" not in await remaining(http, "2027-02-02")


async def test_same_idempotency_key_books_once(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    same = key()
    first = await tables.book(BERNARDIN, at("2027-02-03", "19:00"), 2, ADA, idempotency_key=same)
    again = await tables.book(BERNARDIN, at("2027-02-03", "19:00"), 2, ADA, idempotency_key=same)
    assert again == first
    together = key()
    racing = await asyncio.gather(
        *(tables.book(BERNARDIN, at("2027-02-03", "20:00"), 3, ADA, idempotency_key=together) for _ in range(10))
    )
    assert len({r.reservation_id for r in racing}) == 1
    left = await remaining(http, "2027-02-03")
    assert (left["19:00"], left["20:00"]) == (8, 7)


async def test_same_key_with_another_request_is_a_conflict(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    same = key()
    await tables.book(BERNARDIN, at("2027-02-04", "19:00"), 2, ADA, idempotency_key=same)
    with pytest.raises(DomainError) as caught:
        await tables.book(BERNARDIN, at("2027-02-04", "19:00"), 3, ADA, idempotency_key=same)
    assert caught.value.kind == "conflict"
    assert caught.value.details["provider_error"] == "idempotency_conflict"
    assert (await remaining(http, "2027-02-04"))["19:00"] == 8


async def test_hold_counts_against_capacity_until_confirmed(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    hold = await tables.hold(BERNARDIN, at("2027-02-05", "19:00"), 6, ADA, ttl_seconds=600, idempotency_key=key())
    assert hold.expires_at.tzinfo is not None
    assert (await remaining(http, "2027-02-05"))["19:00"] == 4
    confirmed = await tables.confirm_hold(hold.hold_id, idempotency_key=key())
    assert (confirmed.reservation_id, confirmed.status) == (hold.hold_id, "booked")
    assert confirmed.confirmation
    assert await tables.confirm_hold(hold.hold_id, idempotency_key=key()) == confirmed
    assert (await remaining(http, "2027-02-05"))["19:00"] == 4


async def test_released_hold_frees_capacity(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    hold = await tables.hold(BERNARDIN, at("2027-02-05", "20:00"), 5, ADA, ttl_seconds=600, idempotency_key=key())
    await tables.release_hold(hold.hold_id)
    await tables.release_hold(hold.hold_id)
    assert (await remaining(http, "2027-02-05"))["20:00"] == 10
    with pytest.raises(DomainError) as caught:
        await tables.confirm_hold(hold.hold_id, idempotency_key=key())
    assert caught.value.details["provider_error"] == "invalid_state"


async def test_expired_hold_frees_capacity(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    hold = await tables.hold(BERNARDIN, at("2027-02-06", "19:00"), 6, ADA, ttl_seconds=1, idempotency_key=key())
    with pytest.raises(NoAvailability):
        await book(tables, "2027-02-06", "19:00", 6)
    await asyncio.sleep(1.2)
    assert (await book(tables, "2027-02-06", "19:00", 6)).status == "booked"
    assert (await http.get(f"/reservations/{hold.hold_id}")).json()["status"] == "expired"
    with pytest.raises(DomainError) as caught:
        await tables.confirm_hold(hold.hold_id, idempotency_key=key())
    assert caught.value.details["provider_error"] == "invalid_state"
    assert (await remaining(http, "2027-02-06"))["19:00"] == 4


async def test_sweep_gives_back_expired_holds(tables: SandboxTables, http: httpx.AsyncClient, db: Database) -> None:
    await tables.hold(BERNARDIN, at("2027-02-07", "19:00"), 4, ADA, ttl_seconds=1, idempotency_key=key())
    await asyncio.sleep(1.2)
    async with db.unit_of_work() as session:
        assert await release_expired_holds(session) >= 1
    async with db.unit_of_work() as session:
        assert await release_expired_holds(session) == 0
        slot = (await session.execute(
            select(SandboxSlot).where(SandboxSlot.venue_id == BERNARDIN, SandboxSlot.slot == "2027-02-07T19:00")
        )).scalar_one()
    assert slot.taken == 0
    assert (await remaining(http, "2027-02-07"))["19:00"] == 10


async def test_modify_moves_the_covers(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    reservation = await book(tables, "2027-02-08", "19:00", 2)
    change = key()
    moved = await tables.modify(
        reservation.reservation_id, start=at("2027-02-08", "21:00"), party_size=4, guest=ADA, idempotency_key=change
    )
    assert (moved.start, moved.party_size, moved.status) == ("2027-02-08T21:00", 4, "booked")
    replayed = await tables.modify(
        reservation.reservation_id, start=at("2027-02-08", "21:00"), party_size=4, guest=ADA, idempotency_key=change
    )
    assert replayed == moved
    left = await remaining(http, "2027-02-08")
    assert (left["19:00"], left["21:00"]) == (10, 6)


async def test_modify_to_a_full_slot_leaves_the_original_intact(
    tables: SandboxTables, http: httpx.AsyncClient
) -> None:
    original = await book(tables, "2027-02-09", "19:00", 2)
    await book(tables, "2027-02-09", "20:00", 6)
    await book(tables, "2027-02-09", "20:00", 4)
    with pytest.raises(NoAvailability) as caught:
        await tables.modify(
            original.reservation_id, start=at("2027-02-09", "20:00"), party_size=2, guest=ADA, idempotency_key=key()
        )
    assert caught.value.nearest[0] == "19:30"
    stored = (await http.get(f"/reservations/{original.reservation_id}")).json()
    assert (stored["start"], stored["party_size"], stored["status"]) == ("2027-02-09T19:00", 2, "booked")
    left = await remaining(http, "2027-02-09")
    assert left["19:00"] == 8 and "20:00" not in left


async def test_cancel_frees_capacity_and_can_be_repeated(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    reservation = await book(tables, "2027-02-10", "19:00", 5)
    assert (await remaining(http, "2027-02-10"))["19:00"] == 5
    await tables.cancel(reservation.reservation_id, idempotency_key=key())
    await tables.cancel(reservation.reservation_id, idempotency_key=key())
    assert (await remaining(http, "2027-02-10"))["19:00"] == 10
    assert (await http.get(f"/reservations/{reservation.reservation_id}")).json()["status"] == "cancelled"


async def test_full_slot_suggests_the_nearest_times_that_fit(tables: SandboxTables) -> None:
    await book(tables, "2027-02-11", "19:00", 6)
    await book(tables, "2027-02-11", "19:00", 4)
    await book(tables, "2027-02-11", "18:30", 6)
    await book(tables, "2027-02-11", "18:30", 2)  # 2 covers left: too few for a party of 4
    with pytest.raises(NoAvailability) as caught:
        await book(tables, "2027-02-11", "19:00", 4)
    assert caught.value.nearest == ["19:30", "18:00", "20:00"]
    assert "no table for 4 at 19:00" in caught.value.message


async def test_party_larger_than_the_venue_takes_is_refused(tables: SandboxTables) -> None:
    with pytest.raises(NoAvailability) as caught:
        await book(tables, "2027-02-12", "19:00", 12)
    assert caught.value.message.startswith(
        "Le Bernardin does not have enough capacity for a party of 12 (largest party: 6)"
    )
    assert caught.value.nearest == []


async def test_closed_day_suggests_the_next_open_day(tables: SandboxTables, http: httpx.AsyncClient) -> None:
    with pytest.raises(NoAvailability) as caught:
        await tables.book(MOMOFUKU_KO, at("2027-02-15", "19:00"), 2, ADA, idempotency_key=key())
    assert "closed on Mondays" in caught.value.message
    assert caught.value.nearest == ["2027-02-16T19:00", "2027-02-16T18:30", "2027-02-16T19:30"]
    assert await remaining(http, "2027-02-15", venue=MOMOFUKU_KO) == {}


async def test_times_outside_hours_or_between_slots_are_refused(tables: SandboxTables) -> None:
    with pytest.raises(NoAvailability) as late:
        await book(tables, "2027-02-13", "23:30", 2)
    assert late.value.message.startswith("No table at 23:30: Le Bernardin seats 17:00–22:30")
    assert late.value.nearest == ["22:00", "21:30", "21:00"]
    with pytest.raises(NoAvailability) as between:
        await book(tables, "2027-02-13", "19:10", 2)
    assert between.value.nearest == ["19:00", "19:30", "18:30"]


async def test_past_time_is_refused(tables: SandboxTables) -> None:
    with pytest.raises(NoAvailability) as caught:
        await book(tables, "2026-06-01", "19:00", 2)
    assert "already passed" in caught.value.message
    assert caught.value.nearest == []


async def test_unknown_ids_are_not_found(tables: SandboxTables) -> None:
    with pytest.raises(ProviderNotFound):
        await tables.book("rst_nowhere", at("2027-02-14", "19:00"), 2, ADA, idempotency_key=key())
    with pytest.raises(ProviderNotFound):
        await tables.cancel("sbk_unknown", idempotency_key=key())
    with pytest.raises(ProviderNotFound):
        await tables.confirm_hold("sbk_unknown", idempotency_key=key())


async def test_invalid_input_is_a_400_in_the_sandbox_error_shape(http: httpx.AsyncClient, sandbox_url: str) -> None:
    body = {"start": "2027-02-14T19:00", "party_size": 2, "guest": {"name": "Ada"}}
    path = f"/restaurants/{BERNARDIN}/reservations"
    cases = [
        await http.post(path, json=body),  # no Idempotency-Key
        await http.post(path, json={**body, "start": "2027-02-30T19:00"}, headers={"Idempotency-Key": key()}),
        await http.post(path, json={**body, "party_size": 0}, headers={"Idempotency-Key": key()}),
        await http.post(path, json={**body, "guest": {}}, headers={"Idempotency-Key": key()}),
        await http.post(path, content=b"{not json", headers={"Idempotency-Key": key(),
                                                               "Content-Type": "application/json"}),
        await http.get(f"/restaurants/{BERNARDIN}/availability", params={"date": "tomorrow", "party_size": 2}),
    ]
    for response in cases:
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid" and response.json()["message"]
    unknown_provider = await http.get(f"{sandbox_url}/api/sandbox-nope/restaurants")
    assert unknown_provider.status_code == 404
    assert unknown_provider.json()["error"] == "not_found"


async def test_injected_faults_surface_as_provider_unavailable(serve_with_faults: Any) -> None:
    async with serve_with_faults({"sandbox-tables": {"error_rate": 1.0}}) as url:
        failing = SandboxTables(SETTINGS.model_copy(update={"sandbox_url": url, "provider_timeout_seconds": 30}))
        try:
            with pytest.raises(ProviderUnavailable) as failed:
                await failing.find_venue("Le Bernardin", "New York")
            assert failed.value.retry_after == 1
        finally:
            await failing.aclose()
    async with serve_with_faults({"sandbox-tables": {"latency_ms": 500}}) as url:
        impatient = SandboxTables(SETTINGS.model_copy(update={"sandbox_url": url, "provider_timeout_seconds": 0.1}))
        try:
            with pytest.raises(ProviderUnavailable):
                await impatient.find_venue("Le Bernardin", "New York")
        finally:
            await impatient.aclose()


async def test_faults_are_per_app_and_leave_other_providers_alone(
    serve_with_faults: Any, tables: SandboxTables
) -> None:
    async with serve_with_faults({"sandbox-air": {"error_rate": 1.0}}) as url:
        calm = SandboxTables(SETTINGS.model_copy(update={"sandbox_url": url, "provider_timeout_seconds": 30}))
        try:
            assert await calm.find_venue("Le Bernardin", "New York") is not None
        finally:
            await calm.aclose()
    assert await tables.find_venue("Le Bernardin", "New York") is not None


def test_malformed_faults_fail_when_the_app_is_built(db: Database) -> None:
    for faults in ({"sandbox-tables": {"error_rate": 2}}, {"sandbox-tables": {"typo": 1}}, {"sandbox-nope": {}}):
        with pytest.raises(ValueError):
            build_sandbox_app(db, faults)
