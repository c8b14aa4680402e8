"""Who may call what: API keys on the reservations dialect, X-Integration-Key on the automations dialect.

Expiry, revocation by another process and last-use times: test_auth_cache.py."""

import secrets

import httpx
import pytest

from errand.identity import service as identity_service

BOOK = "/api/v1/agent/restaurant/book"
# An authenticated caller gets 404 here; an unauthenticated one 401. Nothing is booked.
PROBE = "/api/v1/transactions/txn_doesnotexist"


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def probe(server, key: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        return await client.get(PROBE)


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic YWdlbnQ6c2VjcmV0"},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not-an-errand-key"},
    {"Authorization": "Bearer ar_live_short"},
    {"Authorization": f"Bearer ar_live_{secrets.token_urlsafe(32)}"},
], ids=["no-header", "basic-scheme", "empty-bearer", "malformed", "too-short", "unknown"])
async def test_request_without_a_valid_key_is_unauthorized(anon, booking_request, headers):
    response = await anon.post(BOOK, json=booking_request(), headers=headers)

    assert_unauthorized(response)


async def test_revoked_key_is_unauthorized_like_an_unknown_one(server, org, mint):
    key = await mint(org.name)
    assert (await probe(server, key)).status_code == 404

    async with server.db.unit_of_work() as session:
        await identity_service.revoke_api_key(session, key[:12])

    revoked = await probe(server, key)
    unknown = await probe(server, f"ar_live_{secrets.token_urlsafe(32)}")
    assert_unauthorized(revoked)
    assert revoked.json() == unknown.json()


async def test_ogk_key_works_on_the_reservations_dialect(server, org, mint, book):
    key = await mint(org.name, prefix="ogk")
    assert key.startswith("ogk_live_")

    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30) as client:
        booked = await book("19:00", client=client)

    assert booked["status"] == "confirmed"


async def test_key_without_the_restaurant_scenario_is_policy_violation(server, org, mint, booking_request):
    key = await mint(org.name, scenarios=["hotel", "flight"])

    async with httpx.AsyncClient(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        response = await client.post(BOOK, json=booking_request())

    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "POLICY_VIOLATION"


async def test_agent_key_cannot_create_policies(org):
    response = await org.agent.post("/api/v1/policies", json={
        "name": "Cap", "type": "SPENDING_LIMIT", "config": {"maxAmountUsd": 500},
    })

    assert response.status_code == 403, response.text
    assert set(response.json()["error"]) >= {"code", "message"}
    listed = await org.agent.get("/api/v1/policies")
    assert listed.status_code == 200, listed.text
    assert listed.json()["policies"] == []


def assert_automations_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]


async def test_agent_key_cannot_list_or_decide_approvals(server, org):
    async with httpx.AsyncClient(base_url=server.base_url, headers={"X-Integration-Key": org.agent_key}) as client:
        listed = await client.get("/api/approvals", params={"status": "pending"})
        decided = await client.post("/api/approvals/apr_doesnotexist/decision", json={"decision": "approved"})

    assert_automations_error(listed, 403, "forbidden")
    assert_automations_error(decided, 403, "forbidden")


@pytest.mark.parametrize("headers", [
    {},
    {"X-Integration-Key": ""},
    {"X-Integration-Key": f"ar_live_{secrets.token_urlsafe(32)}"},
], ids=["no-header", "empty", "unknown"])
async def test_automations_dialect_without_a_valid_integration_key_is_unauthorized(anon, headers):
    response = await anon.get("/api/approvals", params={"status": "pending"}, headers=headers)

    assert_automations_error(response, 401, "unauthorized")


async def test_automations_dialect_does_not_take_a_bearer_header(org):
    response = await org.admin.get("/api/approvals", headers={"X-Integration-Key": ""})

    assert_automations_error(response, 401, "unauthorized")


async def test_admin_key_lists_approvals(org):
    response = await org.admin.get("/api/approvals", params={"status": "pending"})

    assert response.status_code == 200, response.text
    assert response.json()["approvals"] == []


async def test_unknown_route_is_not_found_in_the_reservations_shape(org):
    response = await org.agent.get("/api/v1/no/such/route")

    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert set(response.json()["error"]) == {"code", "message"}
