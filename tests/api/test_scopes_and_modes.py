"""A key's scope bounds every operation on an object, and test and live are separate worlds.

- Scenarios: a key limited to hotels may not read, change or cancel a restaurant transaction
  or job (403: POLICY_VIOLATION in the reservations dialect, ``scenario_not_allowed`` in the
  execution dialect), and lists show it nothing of other scenarios.
- Modes: what a test key makes does not exist for a live key of the same organization and
  the other way round (404, as for an unknown id), idempotency keys included.
- The daily request limit of a key counts every route, ``X-Integration-Key`` ones included.
"""

from datetime import date
from typing import Any

import httpx

from tests.api.conftest import Book, BookingRequest
from tests.api.execution.support import wait
from tests.conftest import Org, Server, mint_key
from tests.api.execution.support import restaurant_job

BOOK = "/api/v1/agent/restaurant/book"
CANCEL = "/api/v1/agent/restaurant/cancel"
MODIFY = "/api/v1/agent/restaurant/modify"
JOBS = "/api/v1/execution-jobs"
APPROVALS = "/api/approvals"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]



async def transaction_status(org: Org, transaction_id: str) -> str:
    response = await org.agent.get(f"/api/v1/transactions/{transaction_id}")
    assert response.status_code == 200, response.text
    return response.json()["status"]


# --- scenarios ------------------------------------------------------------------------------


async def booking_awaiting_approval(org: Org, body: dict[str, Any]) -> httpx.Response:
    """``body`` booked live under a policy that asks a person every time: the 202 answer."""
    policy = await org.admin.post("/api/v1/policies", json={
        "name": "Ask always", "type": "APPROVAL_REQUIRED", "config": {"threshold": 1}})
    assert policy.status_code == 201, policy.text
    pending = await org.agent.post(BOOK, json=body)
    assert pending.status_code == 202, pending.text
    return pending


async def test_hotel_only_key_cannot_read_modify_or_cancel_a_restaurant_transaction(
    server: Server, org: Org, book: Book
) -> None:
    txn = await book()
    hotels = bearer(await mint_key(server, org.name, scenarios=["hotel"]))
    read = await org.agent.get(f"/api/v1/transactions/{txn['transactionId']}", headers=hotels)
    modify = await org.agent.post(MODIFY, json={"transactionId": txn["transactionId"], "updates": {"partySize": 3}},
                                  headers=hotels)
    cancel = await org.agent.post(CANCEL, json={"transactionId": txn["transactionId"]}, headers=hotels)
    for response in (read, modify, cancel):
        assert response.status_code == 403, response.text
        assert code(response) == "POLICY_VIOLATION"
    assert await transaction_status(org, txn["transactionId"]) == "confirmed"


async def test_hotel_only_key_cannot_read_audit_or_cancel_a_restaurant_job_nor_list_it(
    server: Server, org: Org, day: date
) -> None:
    created = await org.agent.post(JOBS, json=restaurant_job(day))
    assert created.status_code == 202, created.text
    job_id = created.json()["jobId"]
    hotels = bearer(await mint_key(server, org.name, scenarios=["hotel"], prefix="ogk"))
    for method, path in (("GET", ""), ("GET", "/audit"), ("GET", "/snapshots"), ("POST", "/cancel")):
        response = await org.agent.request(method, f"{JOBS}/{job_id}{path}", headers=hotels)
        assert response.status_code == 403, (method, path, response.text)
        assert code(response) == "scenario_not_allowed", (method, path)
    listed = await org.agent.get(JOBS, headers=hotels)
    assert listed.status_code == 200
    assert job_id not in [j["jobId"] for j in listed.json()["jobs"]]
    # The whole organization's key still sees it, and it was not cancelled by the refused call.
    mine = await org.agent.get(f"{JOBS}/{job_id}")
    assert mine.status_code == 200 and mine.json()["status"] != "cancelled"


async def test_hotel_only_admin_key_cannot_see_or_decide_a_restaurant_approval(
    server: Server, org: Org, booking_request: BookingRequest
) -> None:
    pending = await booking_awaiting_approval(org, booking_request("13:00"))
    approval_id = pending.json()["approval"]["approvalId"]
    hotel_admin = await mint_key(server, org.name, scenarios=["hotel"], role="admin")
    headers = {"X-Integration-Key": hotel_admin}
    listed = await org.admin.get(APPROVALS, headers=headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["approvals"] == []
    mine = [a["id"] for a in (await org.admin.get(APPROVALS)).json()["approvals"]]
    assert approval_id in mine
    decided = await org.admin.post(f"{APPROVALS}/{approval_id}/decision", json={"decision": "approved"},
                                   headers=headers)
    assert decided.status_code == 403, decided.text
    assert decided.json()["error"] == "scenario_not_allowed"


# --- test and live --------------------------------------------------------------------------


async def test_test_and_live_transactions_do_not_see_each_other(
    org: Org, book: Book, booking_request: BookingRequest
) -> None:
    live = await book("18:00")
    test = bearer(org.test_key)
    for response in (
        await org.agent.get(f"/api/v1/transactions/{live['transactionId']}", headers=test),
        await org.agent.post(CANCEL, json={"transactionId": live["transactionId"]}, headers=test),
        await org.agent.post(MODIFY, json={"transactionId": live["transactionId"], "updates": {"partySize": 3}}, headers=test),
    ):
        assert response.status_code == 404, response.text
        assert code(response) == "NOT_FOUND"
    assert await transaction_status(org, live["transactionId"]) == "confirmed"

    made = await org.agent.post(BOOK, json=booking_request("18:30"), headers=test)
    assert made.status_code == 201, made.text
    test_id = made.json()["transactionId"]
    assert (await org.agent.get(f"/api/v1/transactions/{test_id}", headers=test)).status_code == 200
    for response in (
        await org.agent.get(f"/api/v1/transactions/{test_id}"),
        await org.agent.post(CANCEL, json={"transactionId": test_id}),
    ):
        assert response.status_code == 404, response.text
    assert (await org.agent.get(f"/api/v1/transactions/{test_id}", headers=test)).json()["status"] == "confirmed"


async def test_test_and_live_jobs_do_not_see_each_other(org: Org, day: date) -> None:
    test = bearer(org.test_key)
    live_id = (await org.agent.post(JOBS, json=restaurant_job(day))).json()["jobId"]
    created = await org.agent.post(JOBS, json=restaurant_job(day), headers=test)
    assert created.status_code == 202, created.text
    test_id = created.json()["jobId"]
    for job_id, headers in ((live_id, test), (test_id, None)):
        for method, path in (("GET", ""), ("GET", "/audit"), ("GET", "/snapshots"), ("POST", "/cancel")):
            response = await org.agent.request(method, f"{JOBS}/{job_id}{path}", headers=headers)
            assert response.status_code == 404, (job_id, method, path, response.text)
            assert code(response) == "job_not_found"
    live_list = [j["jobId"] for j in (await org.agent.get(JOBS)).json()["jobs"]]
    test_list = [j["jobId"] for j in (await org.agent.get(JOBS, headers=test)).json()["jobs"]]
    assert live_id in live_list and test_id not in live_list
    assert test_id in test_list and live_id not in test_list


async def test_provider_metrics_count_only_the_keys_own_mode(org: Org, day: date) -> None:
    job_id = (await org.agent.post(JOBS, json=restaurant_job(day))).json()["jobId"]
    done = await wait(org.agent, job_id)
    assert done["providerId"], done
    path = f"/api/v1/metrics/providers/{done['providerId']}"
    live = (await org.agent.get(path)).json()
    test = (await org.agent.get(path, headers=bearer(org.test_key))).json()
    assert live["totalAttempts"] >= 1
    assert test["totalAttempts"] == 0 and test["lastEventAt"] is None


async def test_one_idempotency_key_books_once_per_mode(org: Org, booking_request: BookingRequest) -> None:
    body = booking_request("17:00")
    headers = {"Idempotency-Key": "same-key-both-modes"}
    live = await org.agent.post(BOOK, json=body, headers=headers)
    test = await org.agent.post(BOOK, json=body, headers={**headers, **bearer(org.test_key)})
    assert live.status_code == 201 and test.status_code == 201, (live.text, test.text)
    assert "Idempotent-Replayed" not in test.headers
    assert live.json()["transactionId"] != test.json()["transactionId"]
    assert live.json()["reservation"]["reservationId"] != test.json()["reservation"]["reservationId"]
    live_again = await org.agent.post(BOOK, json=body, headers=headers)
    test_again = await org.agent.post(BOOK, json=body, headers={**headers, **bearer(org.test_key)})
    assert live_again.headers.get("Idempotent-Replayed") == "true"
    assert test_again.headers.get("Idempotent-Replayed") == "true"
    assert live_again.json()["transactionId"] == live.json()["transactionId"]
    assert test_again.json()["transactionId"] == test.json()["transactionId"]


async def test_one_job_idempotency_key_makes_one_job_per_mode(org: Org, day: date) -> None:
    body = restaurant_job(day, clientMetadata={"idempotencyKey": "job-key-both-modes"})
    live = await org.agent.post(JOBS, json=body)
    test = await org.agent.post(JOBS, json=body, headers=bearer(org.test_key))
    assert live.status_code == 202 and test.status_code == 202, (live.text, test.text)
    assert live.json()["jobId"] != test.json()["jobId"]
    again = await org.agent.post(JOBS, json=body, headers=bearer(org.test_key))
    assert again.status_code == 200 and again.json()["jobId"] == test.json()["jobId"]


async def test_a_test_mode_profile_cannot_be_used_by_a_live_job(org: Org, day: date) -> None:
    stored = await org.agent.post("/api/v1/profiles", headers=bearer(org.test_key), json={
        "first_name": "Alex", "last_name": "Traveler", "email": "alex@example.com", "phone": "+15551234567"})
    assert stored.status_code == 201, stored.text
    body = restaurant_job(day)
    del body["profile"]
    body["profileId"] = stored.json()["profileId"]
    live = await org.agent.post(JOBS, json=body)
    assert live.status_code == 400, live.text
    test = await org.agent.post(JOBS, json=body, headers=bearer(org.test_key))
    assert test.status_code == 202, test.text


async def test_a_test_admin_key_sees_and_decides_only_test_approvals(
    server: Server, org: Org, booking_request: BookingRequest
) -> None:
    pending = await booking_awaiting_approval(org, booking_request("14:00"))
    test_admin = await mint_key(server, org.name, role="admin", env="test")
    listed = await org.admin.get(APPROVALS, headers={"X-Integration-Key": test_admin})
    assert listed.status_code == 200 and listed.json()["approvals"] == []
    live = [a for a in (await org.admin.get(APPROVALS)).json()["approvals"]
            if a["transaction_id"] == pending.json()["transactionId"]]
    assert len(live) == 1
    decided = await org.admin.post(f"{APPROVALS}/{live[0]['id']}/decision", json={"decision": "denied"},
                                   headers={"X-Integration-Key": test_admin})
    assert decided.status_code == 404, decided.text
    assert decided.json()["error"] == "approval_not_found"


# --- the daily limit ------------------------------------------------------------------------


async def test_daily_limit_counts_integration_key_requests_on_approvals(server: Server, org: Org) -> None:
    key = await mint_key(server, org.name, role="admin", rate_limit_per_day=3)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        # A Bearer request on another dialect counts against the same day.
        assert (await client.get("/api/v1/policies", headers=bearer(key))).status_code == 200
        for _ in range(2):
            ok = await client.get(APPROVALS, headers={"X-Integration-Key": key})
            assert ok.status_code == 200, ok.text
        limited = await client.get(APPROVALS, headers={"X-Integration-Key": key})
        assert limited.status_code == 429, limited.text
        assert limited.json()["error"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) > 0
        decided = await client.post(f"{APPROVALS}/appr_unknown/decision", json={"decision": "denied"},
                                    headers={"X-Integration-Key": key})
        assert decided.status_code == 429, decided.text
        assert (await client.get("/api/v1/policies", headers=bearer(key))).status_code == 429
