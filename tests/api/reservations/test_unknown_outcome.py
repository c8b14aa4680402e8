"""A provider that cannot be reached: a 503 the client may retry, never cached, never booked twice."""

from datetime import date

import httpx

from tests.conftest import Org, Server, free_port, running

BOOK = "/api/v1/agent/restaurant/book"


def booking(day: date, party_size: int) -> dict:
    return {"restaurantName": "Le Bernardin", "city": "New York", "partySize": party_size,
            "datetime": f"{day}T19:00:00", "customer": {"name": "Jane Doe", "email": "jane@example.com"}}


async def test_a_503_from_an_unreachable_provider_is_not_cached_and_the_retry_books_once(
    server: Server, org: Org, day: date
) -> None:
    # The same database, but its providers point at a port where nothing listens.
    settings = server.settings.model_copy(update={
        "port": free_port(), "sandbox_url": f"http://127.0.0.1:{free_port()}/sandbox", "worker": False,
    })
    async with running(settings) as broken_url, httpx.AsyncClient(
        base_url=broken_url, headers={"Authorization": f"Bearer {org.agent_key}"}
    ) as broken:
        failed = await broken.post(BOOK, json=booking(day, 6), headers={"Idempotency-Key": "retry-me"})
    assert failed.status_code == 503, failed.text
    assert failed.json()["error"]["code"] == "PROVIDER_UNAVAILABLE"
    assert int(failed.headers["Retry-After"]) > 0

    retried = await org.agent.post(BOOK, json=booking(day, 6), headers={"Idempotency-Key": "retry-me"})
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    replayed = await org.agent.post(BOOK, json=booking(day, 6), headers={"Idempotency-Key": "retry-me"})
    assert replayed.json() == retried.json()

    # Le Bernardin seats 10 per slot: the 6 were taken once, so 4 fit and a fifth does not.
    assert (await org.agent.post(BOOK, json=booking(day, 4))).status_code == 201
    full = await org.agent.post(BOOK, json=booking(day, 1))
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "CAPACITY_EXCEEDED"
