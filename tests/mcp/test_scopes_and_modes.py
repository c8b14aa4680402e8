"""Over MCP as over REST: a key's scenarios bound every operation on a transaction or job
(POLICY_VIOLATION), test and live keys do not see each other's objects (NOT_FOUND), and
one idempotency key is one record per mode."""

from datetime import date
from typing import Any

from tests.conftest import Org, Server, mint_key
from tests.mcp.conftest import Connect, error, ok
from tests.api.execution.support import restaurant_job

BOOK = "/api/v1/agent/restaurant/book"
JOBS = "/api/v1/execution-jobs"


def booking(day: date, time: str, party_size: int = 2) -> dict[str, Any]:
    return {
        "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": party_size,
        "datetime": f"{day.isoformat()}T{time}:00", "customer": {"name": "Jane Doe", "email": "jane@example.com"},
    }



async def live_transaction(org: Org, day: date, time: str) -> str:
    response = await org.agent.post(BOOK, json=booking(day, time))
    assert response.status_code == 201, response.text
    return str(response.json()["transactionId"])


async def live_job(org: Org, day: date) -> str:
    response = await org.agent.post(JOBS, json=restaurant_job(day))
    assert response.status_code == 202, response.text
    return str(response.json()["jobId"])


async def status_of(org: Org, transaction_id: str) -> str:
    return str((await org.agent.get(f"/api/v1/transactions/{transaction_id}")).json()["status"])


async def test_hotel_only_key_cannot_modify_or_cancel_a_restaurant_transaction(
    mcp: Connect, server: Server, org: Org, day: date
) -> None:
    txn_id = await live_transaction(org, day, "19:00")
    hotels = await mint_key(server, org.name, scenarios=["hotel"])
    async with mcp(hotels) as session:
        modified = error(await session.call_tool("modify_reservation", {
            "transaction_id": txn_id, "updates": {"party_size": 3}}))
        cancelled = error(await session.call_tool("cancel_reservation", {"transaction_id": txn_id}))
    assert modified["code"] == "POLICY_VIOLATION" and cancelled["code"] == "POLICY_VIOLATION"
    assert await status_of(org, txn_id) == "confirmed"


async def test_hotel_only_key_cannot_read_audit_or_cancel_a_restaurant_job(
    mcp: Connect, server: Server, org: Org, day: date
) -> None:
    job_id = await live_job(org, day)
    hotels = await mint_key(server, org.name, scenarios=["hotel"])
    async with mcp(hotels) as session:
        for tool in ("get_execution_job", "get_execution_job_audit", "cancel_execution_job"):
            refused = error(await session.call_tool(tool, {"job_id": job_id}))
            assert refused["code"] == "POLICY_VIOLATION", (tool, refused)


async def test_test_key_cannot_touch_live_transactions_or_jobs(mcp: Connect, org: Org, day: date) -> None:
    txn_id = await live_transaction(org, day, "19:30")
    job_id = await live_job(org, day)
    async with mcp(org.test_key) as session:
        for tool, arguments in (
            ("cancel_reservation", {"transaction_id": txn_id}),
            ("modify_reservation", {"transaction_id": txn_id, "updates": {"party_size": 3}}),
            ("get_execution_job", {"job_id": job_id}),
            ("get_execution_job_audit", {"job_id": job_id}),
            ("cancel_execution_job", {"job_id": job_id}),
        ):
            refused = error(await session.call_tool(tool, arguments))
            assert refused["code"] == "NOT_FOUND", (tool, refused)
    assert await status_of(org, txn_id) == "confirmed"


async def test_live_key_cannot_cancel_a_test_transaction(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.test_key) as session:
        booked = ok(await session.call_tool("book_reservation", booking(day, "20:00")))
    async with mcp(org.agent_key) as session:
        refused = error(await session.call_tool("cancel_reservation", {"transaction_id": booked["transactionId"]}))
    assert refused["code"] == "NOT_FOUND"


async def test_one_idempotency_key_books_once_per_mode(mcp: Connect, org: Org, day: date) -> None:
    arguments = {**booking(day, "20:30"), "idempotency_key": "mcp-key-both-modes"}
    async with mcp(org.agent_key) as session:
        live = ok(await session.call_tool("book_reservation", arguments))
        live_again = ok(await session.call_tool("book_reservation", arguments))
    async with mcp(org.test_key) as session:
        test = ok(await session.call_tool("book_reservation", arguments))
        test_again = ok(await session.call_tool("book_reservation", arguments))
    assert live["transactionId"] != test["transactionId"]
    assert live["replayed"] is False and test["replayed"] is False
    assert live_again["transactionId"] == live["transactionId"] and live_again["replayed"] is True
    assert test_again["transactionId"] == test["transactionId"] and test_again["replayed"] is True
