"""MCP tool arguments get the same verdict as the REST bodies they mirror.

No coercion (``party_size: true`` is not a party of one), one spelling per field, no control
characters, idempotency keys of printable ASCII, over HTTP and over stdio; hostile JSON-RPC
bodies are refused before the key is checked.
"""

import os
import uuid
from datetime import date
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.conftest import Org, Server
from tests.mcp.conftest import Connect, error, mcp_url, ok
from tests.mcp.test_reservations import rest_booking, snake_booking
from tests.mcp.test_stdio import ERRAND, stdio_env

CANCEL_DETAIL = "/api/v1/transactions/{}"


@pytest.mark.parametrize("party_size", [True, "4", 4.0])
async def test_party_size_must_be_a_json_integer(mcp: Connect, org: Org, day: date, party_size: Any) -> None:
    async with mcp(org.agent_key) as session:
        refused = error(await session.call_tool("book_reservation", {**snake_booking(day), "party_size": party_size}))

    assert refused["code"] == "INVALID_REQUEST"
    assert refused["details"] == [{"field": "party_size", "message": "must be an integer"}]


async def test_search_quantity_and_job_audit_limit_are_strict_too(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        search = error(await session.call_tool("search_availability", {
            "venue": "Golden Gate Grill", "city": "San Francisco", "date": day.isoformat(), "quantity": "2"}))
        audit = error(await session.call_tool("get_execution_job_audit", {"job_id": "job_x", "limit": 5.0}))
    assert search["code"] == audit["code"] == "INVALID_REQUEST"


async def test_both_spellings_of_an_argument_are_refused(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        top = error(await session.call_tool("book_reservation", {**snake_booking(day), "partySize": 2}))
        slot = {"start": f"{day.isoformat()}T19:00:00"}
        generic = error(await session.call_tool("book_reservation", {
            "provider": "Golden Gate Grill", "city": "San Francisco", "customer": {"name": "Jo"},
            "time_slot": slot, "timeSlot": slot}))
    assert top["code"] == generic["code"] == "INVALID_REQUEST"
    assert "party_size and partySize" in top["details"][0]["message"]
    assert generic["details"][0]["field"] == "time_slot"


async def test_both_spellings_inside_updates_are_refused(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        booked = ok(await session.call_tool("book_reservation", rest_booking(day, "17:00")))
        refused = error(await session.call_tool("modify_reservation", {
            "transaction_id": booked["transactionId"], "updates": {"partySize": 3, "party_size": 4}}))
    assert refused["code"] == "INVALID_REQUEST"
    assert refused["details"][0]["field"] == "updates.party_size"


async def test_nul_in_a_cancel_reason_is_refused_and_the_booking_stays_confirmed(
    mcp: Connect, org: Org, day: date
) -> None:
    async with mcp(org.agent_key) as session:
        booked = ok(await session.call_tool("book_reservation", rest_booking(day, "17:15")))
        refused = error(await session.call_tool("cancel_reservation", {
            "transaction_id": booked["transactionId"], "reason": "bad\u0000"}))
    assert refused["code"] == "INVALID_REQUEST"
    assert refused["details"] == [{"field": "reason", "message": "must not contain NUL or other control characters"}]
    detail = (await org.agent.get(CANCEL_DETAIL.format(booked["transactionId"]))).json()
    assert detail["status"] == "confirmed"


@pytest.mark.parametrize("key", ["clé", "a" * 256, "tab\there"])
async def test_idempotency_key_outside_printable_ascii_is_refused(mcp: Connect, org: Org, day: date,
                                                                  key: str) -> None:
    async with mcp(org.agent_key) as session:
        refused = error(await session.call_tool("book_reservation", {**rest_booking(day, "17:30"),
                                                                     "idempotency_key": key}))
    assert refused["code"] == "INVALID_REQUEST"
    assert refused["details"][0]["field"] == "idempotency_key"


async def test_deeply_nested_arguments_are_refused(mcp: Connect, org: Org) -> None:
    deep: Any = "x"
    for _ in range(34):
        deep = {"d": deep}
    async with mcp(org.agent_key) as session:
        refused = error(await session.call_tool("create_execution_job", {
            "request": {"scenario": "restaurant", "params": {}}, "client_metadata": {"deep": deep}}))
    assert refused["code"] == "INVALID_REQUEST"
    assert "nested more than 32 levels" in refused["details"][0]["message"]


async def test_hostile_json_rpc_bodies_are_json_rpc_errors_before_the_key_is_checked(server: Server) -> None:
    deep = '{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": ' + "[" * 5000 + "]" * 5000 + "}}"
    async with httpx.AsyncClient(timeout=30) as client:  # no API key
        nested = await client.post(mcp_url(server), content=deep, headers={"Content-Type": "application/json"})
        large = await client.post(mcp_url(server), content=b"[" + b" " * (1024 * 1024 + 1) + b"]",
                                  headers={"Content-Type": "application/json"})
    assert nested.status_code == 400, nested.text
    assert nested.json()["error"]["code"] == -32700
    assert nested.json()["error"]["data"]["code"] == "INVALID_REQUEST"
    assert large.status_code == 413, large.text
    assert large.json()["error"]["data"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_stdio_gives_the_same_verdicts(server: Server, org: Org, day: date) -> None:
    params = StdioServerParameters(command=ERRAND, args=["mcp"], env=stdio_env(server, org.agent_key))
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            coerced = error(await session.call_tool("book_reservation", {**snake_booking(day), "party_size": True}))
            both = error(await session.call_tool("book_reservation", {**snake_booking(day), "partySize": 2}))
            nul = error(await session.call_tool("cancel_reservation", {"transaction_id": "txn\u0000"}))
            key = error(await session.call_tool("book_reservation", {**snake_booking(day),
                                                                     "idempotency_key": f"clé-{uuid.uuid4()}"}))
    assert [e["code"] for e in (coerced, both, nul, key)] == ["INVALID_REQUEST"] * 4
