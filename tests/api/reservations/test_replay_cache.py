"""Replays from the process's cache of completed Idempotency-Keys keep the database's rules.

A completed record does not change until it expires, so a server keeps it in memory (sealed)
once it has read it, and answers later replays from there. These tests fill the cache with a
first replay, then check that what it answers is what the database would: the same body
(or error), a 409 for another body, nothing once the record has expired (the server's clock
is moved past the expiry), and no customer detail in clear in memory.
"""

import types
from datetime import date, timedelta

from errand.guard import idempotency
from errand.kit import clock, crypto
from tests.api.reservations.test_idempotency import BOOK, booking, key, remaining
from tests.conftest import Org


def cached(k: str) -> list[idempotency._Completed]:
    """The cache's entries for Idempotency-Key ``k`` (any organization, mode or operation)."""
    return [entry for (_, _, _, cached_key), entry in list(idempotency._completed.items()) if cached_key == k]


async def book_and_replay(org: Org, day: date, k: str, body: dict) -> dict:
    """Book under ``k``, replay once (which fills the cache) and return the first answer."""
    first = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k})
    assert first.status_code == 201, first.text
    replay = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json() == first.json()
    assert len(cached(k)) == 1
    return first.json()


async def test_a_cached_replay_returns_the_first_answer_and_books_nothing(org: Org, day: date) -> None:
    k = key()
    first = await book_and_replay(org, day, k, booking(day, "19:00", 6))

    again = await org.agent.post(BOOK, json=booking(day, "19:00", 6), headers={"Idempotency-Key": k})

    assert again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first
    assert await remaining(org.agent, day, "19:00") == 4


async def test_another_body_under_a_cached_key_is_a_conflict(org: Org, day: date) -> None:
    k = key()
    await book_and_replay(org, day, k, booking(day, "19:00", 6))

    other = await org.agent.post(BOOK, json=booking(day, "19:00", 2), headers={"Idempotency-Key": k})

    assert other.status_code == 409, other.text
    assert other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert await remaining(org.agent, day, "19:00") == 4


async def test_a_cached_error_replays_as_the_same_error(org: Org, day: date) -> None:
    k = key()
    body = booking(day, "19:00", 2, restaurant="Nowhere At All")
    first = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k})
    assert first.status_code == 404, first.text
    assert (await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k})).json() == first.json()
    assert len(cached(k)) == 1

    again = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": k})

    assert again.status_code == 404
    assert again.json() == first.json()


async def test_an_expired_key_is_not_replayed_from_the_cache(org: Org, day: date, monkeypatch) -> None:
    k = key()
    await book_and_replay(org, day, k, booking(day, "19:00", 6))
    (entry,) = cached(k)
    # Time passes beyond the record's expiry (the cache's own lifetime is not what protects it).
    later = types.SimpleNamespace(now=lambda: entry.expires_at + timedelta(seconds=1), as_utc=clock.as_utc)
    monkeypatch.setattr(idempotency, "clock", later)

    again = await org.agent.post(BOOK, json=booking(day, "20:00", 2), headers={"Idempotency-Key": k})

    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert await remaining(org.agent, day, "20:00") == 8


async def test_cached_answers_hold_the_customer_sealed(org: Org, day: date) -> None:
    k = key()
    body = booking(day, "19:00", 2)
    body["customer"] = {"name": "Zebedee Quartermain", "email": "zebedee.q@example.com", "phone": "+15550100"}
    await book_and_replay(org, day, k, body)

    (entry,) = cached(k)

    assert not [s for s in ("Zebedee", "Quartermain", "zebedee.q@example.com", "+15550100") if s in repr(entry)]
    assert "zebedee.q@example.com" in crypto.unseal(entry.sealed.encode()).decode()
