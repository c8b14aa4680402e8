"""Repeats of a replay are answered in front of the dialect app (errand.api.replays), exactly as the app would.

Once a replay of a completed Idempotency-Key has been answered, the same request again (same API
key, Idempotency-Key and body bytes) is answered from the kept bytes without running the route.
These tests count the route's calls to tell which path answered, and check that the shortcut
answers the same bytes, still authenticates (a revoked key stops at once), still counts the daily
limit, and never answers another body or another key.
"""

import json
from datetime import date
from typing import Any

import httpx
import pytest

from errand.bookings import service as bookings_service
from errand.identity import service as identity_service
from tests.api.reservations.test_idempotency import BOOK, booking, key, remaining
from tests.conftest import Org


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Idempotency-Keys the book route was run with (the shortcut does not run it)."""
    calls: list[str] = []
    book = bookings_service.book

    async def counted(core: Any, principal: Any, data: Any, idempotency_key: str | None) -> Any:
        calls.append(idempotency_key or "")
        return await book(core, principal, data, idempotency_key)

    monkeypatch.setattr(bookings_service, "book", counted)
    return calls


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


async def post(client: httpx.AsyncClient, k: str, content: bytes) -> httpx.Response:
    return await client.post(BOOK, content=content, headers={"Idempotency-Key": k, "Content-Type": "application/json"})


async def replayed_twice(client: httpx.AsyncClient, k: str, content: bytes) -> httpx.Response:
    """Book under ``k``, replay once through the route (which keeps the answer) and return that replay."""
    first = await post(client, k, content)
    assert first.status_code == 201, first.text
    replay = await post(client, k, content)
    assert replay.headers.get("Idempotent-Replayed") == "true", replay.text
    return replay


def phases(response: httpx.Response) -> list[str]:
    return [part.strip().split(";")[0] for part in response.headers["server-timing"].split(",")]


async def test_a_repeated_replay_is_answered_without_the_route_with_the_same_bytes(
        org: Org, day: date, route_calls: list[str]) -> None:
    k, content = key(), raw(booking(day, "19:00", 6))
    replay = await replayed_twice(org.agent, k, content)

    again = await post(org.agent, k, content)

    assert route_calls == [k, k]  # the third request did not reach the route
    assert again.status_code == replay.status_code == 201
    assert again.content == replay.content
    ignored = {"date", "server-timing", "x-request-id", "traceparent"}  # per response, by design
    assert [(n, v) for n, v in again.headers.multi_items() if n not in ignored] == \
           [(n, v) for n, v in replay.headers.multi_items() if n not in ignored]
    assert phases(again) == phases(replay) == ["auth", "idempotency", "errand", "total"]
    assert await remaining(org.agent, day, "19:00") == 4


async def test_a_key_revoked_in_this_process_is_refused_at_once(
        server: Any, org: Org, day: date, mint: Any, route_calls: list[str]) -> None:
    agent_key = await mint(org.name)
    k, content = key(), raw(booking(day, "19:00", 2))
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {agent_key}"},
                                 timeout=30) as client:
        await replayed_twice(client, k, content)
        async with server.db.unit_of_work() as session:
            await identity_service.revoke_api_key(session, agent_key[:12])

        refused = await post(client, k, content)

    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "UNAUTHORIZED"
    assert "Idempotent-Replayed" not in refused.headers


async def test_another_body_under_the_key_is_still_a_conflict(org: Org, day: date, route_calls: list[str]) -> None:
    k = key()
    await replayed_twice(org.agent, k, raw(booking(day, "19:00", 6)))

    other = await post(org.agent, k, raw(booking(day, "19:00", 2)))
    spaced = await post(org.agent, k, json.dumps(booking(day, "19:00", 6), indent=1).encode())

    assert other.status_code == 409, other.text
    assert other.json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    # The same request spelled with other bytes goes through the route, which replays it.
    assert spaced.status_code == 201 and spaced.headers["Idempotent-Replayed"] == "true"
    assert route_calls == [k] * 4


async def test_another_principal_never_gets_the_kept_answer(
        server: Any, org: Org, day: date, mint: Any, other_org: httpx.AsyncClient, route_calls: list[str]) -> None:
    k, content = key(), raw(booking(day, "19:00", 2))
    replay = await replayed_twice(org.agent, k, content)
    admin_key = await mint(org.name, role="admin")

    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {admin_key}"},
                                 timeout=30) as admin:
        same_org = await post(admin, k, content)
    elsewhere = await post(other_org, k, content)

    # Another key of the organization shares its Idempotency-Keys, through the route.
    assert same_org.status_code == 201 and same_org.content == replay.content
    # Another organization's key is its own request: a booking of its own, not a replay.
    assert elsewhere.status_code == 201, elsewhere.text
    assert "Idempotent-Replayed" not in elsewhere.headers
    assert elsewhere.json()["transactionId"] != replay.json()["transactionId"]
    assert route_calls == [k] * 4


async def test_a_shortcut_answer_counts_against_the_daily_limit(
        server: Any, org: Org, day: date, mint: Any, route_calls: list[str]) -> None:
    limited = await mint(org.name, rate_limit_per_day=3)
    k, content = key(), raw(booking(day, "19:00", 2))
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {limited}"},
                                 timeout=30) as client:
        await replayed_twice(client, k, content)
        third = await post(client, k, content)
        fourth = await post(client, k, content)

    assert third.status_code == 201 and third.headers["Idempotent-Replayed"] == "true"
    assert route_calls == [k, k]
    assert fourth.status_code == 429, fourth.text
    assert fourth.json()["error"]["code"] == "RATE_LIMITED"
