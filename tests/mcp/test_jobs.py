"""The execution-job tools: create, read, audit and cancel, as the execution contract guarantees them.

A job runs in the background as soon as it is created, so the tests assert what the
contract promises at each step rather than how far the autopilot got. The cancel test
parks the job first: an APPROVAL_REQUIRED policy makes the autopilot wait for a human
decision, a state that only a person (or a cancel) ends.
"""

import asyncio
import uuid
from datetime import date

import httpx

from tests.conftest import Org
from tests.mcp.conftest import Connect, error, ok
from tests.api.execution.support import restaurant_job

JOBS = "/api/v1/execution-jobs"



async def test_create_get_and_audit(mcp: Connect, org: Org, day: date) -> None:
    async with mcp(org.agent_key) as session:
        created = ok(await session.call_tool("create_execution_job", restaurant_job(day)))
        assert created["status"] == "pending" and created["terminal"] is False
        assert created["scenario"] == "restaurant" and created["organizationName"] == org.name
        assert created["replayed"] is False
        job = ok(await session.call_tool("get_execution_job", {"job_id": created["jobId"]}))
        audit = ok(await session.call_tool("get_execution_job_audit", {"jobId": created["jobId"]}))
    assert job["jobId"] == created["jobId"]
    assert audit["jobId"] == created["jobId"]
    assert audit["count"] == len(audit["events"]) >= 1
    assert audit["events"][0]["type"] == "job_created"
    assert audit["events"][0]["stepIndex"] == 0
    rest = (await org.agent.get(f"{JOBS}/{created['jobId']}")).json()
    assert rest["jobId"] == created["jobId"] and rest["scenario"] == "restaurant"


async def test_same_idempotency_key_returns_the_job_created_first_even_over_rest(
    mcp: Connect, org: Org, day: date
) -> None:
    key = f"job-{uuid.uuid4()}"
    body = restaurant_job(day)
    response = await org.agent.post(JOBS, json={**body, "clientMetadata": {"idempotencyKey": key}})
    assert response.status_code == 202, response.text
    async with mcp(org.agent_key) as session:
        again = ok(await session.call_tool("create_execution_job", {**body, "idempotency_key": key}))
        other = error(await session.call_tool("create_execution_job", {
            **restaurant_job(day, request={"scenario": "restaurant", "params": {
                "restaurant_name": "Zuni Cafe", "city": "San Francisco", "date": day.isoformat(), "time": "12:00",
                "covers": 2}}),
            "idempotency_key": key}))
    assert again["jobId"] == response.json()["jobId"] and again["replayed"] is True
    assert other["code"] == "IDEMPOTENCY_CONFLICT"


async def test_invalid_job_request_lists_each_issue(mcp: Connect, org: Org, day: date) -> None:
    arguments = restaurant_job(day)
    arguments["request"]["params"]["time"] = "7pm"
    del arguments["profile"]["phone"]
    async with mcp(org.agent_key) as session:
        failure = error(await session.call_tool("create_execution_job", arguments))
    assert failure["code"] == "INVALID_REQUEST"
    assert {d["path"] for d in failure["details"]} == {"request.params.time", "profile.phone"}


async def test_unknown_job_is_not_found(mcp: Connect, org: Org) -> None:
    async with mcp(org.agent_key) as session:
        read = error(await session.call_tool("get_execution_job", {"job_id": str(uuid.uuid4())}))
        audit = error(await session.call_tool("get_execution_job_audit", {"job_id": str(uuid.uuid4())}))
        cancel = error(await session.call_tool("cancel_execution_job", {"job_id": str(uuid.uuid4())}))
    assert read["code"] == audit["code"] == cancel["code"] == "NOT_FOUND"


async def test_cancel_stops_the_job_and_a_retry_with_its_key_replays(mcp: Connect, org: Org, day: date) -> None:
    response = await org.admin.post("/api/v1/policies", json={
        "name": "A person approves every booking", "type": "APPROVAL_REQUIRED", "config": {}})
    assert response.status_code == 201, response.text
    key = f"cancel-{uuid.uuid4()}"
    async with mcp(org.agent_key) as session:
        created = ok(await session.call_tool("create_execution_job", restaurant_job(day)))
        cancelled = ok(await session.call_tool("cancel_execution_job", {"job_id": created["jobId"],
                                                                        "idempotency_key": key}))
        replay = ok(await session.call_tool("cancel_execution_job", {"job_id": created["jobId"],
                                                                     "idempotency_key": key}))
        again = error(await session.call_tool("cancel_execution_job", {"job_id": created["jobId"]}))
        await asyncio.sleep(0.5)  # a runner that was mid-step must not resurrect it
        final = ok(await session.call_tool("get_execution_job", {"job_id": created["jobId"]}))
        audit = ok(await session.call_tool("get_execution_job_audit", {"job_id": created["jobId"]}))
    assert cancelled["status"] == "cancelled" and cancelled["terminal"] is True
    assert replay["status"] == "cancelled" and replay["replayed"] is True
    assert again["code"] == "INVALID_STATE"
    assert final["status"] == "cancelled"
    assert "job_aborted" in [e["type"] for e in audit["events"]]


async def test_get_execution_job_shows_the_payment_awaited_then_paid(mcp: Connect, org: Org, day: date) -> None:
    arguments = restaurant_job(day, consent={"allowedProviders": ["sandbox-tables"], "allowVenueSwitch": False})
    arguments["request"]["params"].update(restaurant_name="Le Bernardin", city="New York", time="19:00")
    async with mcp(org.agent_key) as session:
        created = ok(await session.call_tool("create_execution_job", arguments))
        for _ in range(300):
            job = ok(await session.call_tool("get_execution_job", {"job_id": created["jobId"]}))
            if job["terminal"]:
                break
            await asyncio.sleep(0.2)
        assert job["status"] == "paused_payment", job
        assert job["payment"] == {"status": "awaiting", "expiresAt": job["result"]["holdExpiresAt"],
                                  "paidAt": None, "confirmation": None}
        async with httpx.AsyncClient(timeout=30) as end_user:
            paid = await end_user.post(job["handoffUrl"], data={"card_number": "4242 4242 4242 4242",
                                                                "expiry": "12/34", "cvc": "123"})
        assert paid.status_code == 200, paid.text
        for _ in range(150):
            job = ok(await session.call_tool("get_execution_job", {"job_id": created["jobId"]}))
            if job["status"] != "paused_payment":
                break
            await asyncio.sleep(0.2)
    assert job["status"] == "completed" and job["terminal"] is True, job
    assert job["payment"]["status"] == "paid" and job["payment"]["confirmation"] in job["summary"], job
    assert job["payment"]["paidAt"] == job["completedAt"] and job["handoffUrl"] is None
    rest = (await org.agent.get(f"{JOBS}/{created['jobId']}")).json()
    assert rest["payment"] == job["payment"]
