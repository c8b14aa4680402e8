"""The execution dialect's contract: creating, reading, listing and cancelling jobs, and its errors."""

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Org, Server, mint_key
from tests.api.execution.support import restaurant_job

JOBS = "/api/v1/execution-jobs"



def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


async def test_create_answers_202_with_the_contract_fields(org: Org, day: date) -> None:
    response = await org.agent.post(JOBS, json=restaurant_job(day))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["scenario"] == "restaurant"
    assert body["organizationName"] == org.name
    assert body["_links"]["self"] == f"{JOBS}/{body['jobId']}"
    assert body["_links"]["audit"] == f"{JOBS}/{body['jobId']}/audit"


async def test_job_reads_back_with_every_contract_field(org: Org, day: date) -> None:
    job_id = (await org.agent.post(JOBS, json=restaurant_job(day))).json()["jobId"]
    body = (await org.agent.get(f"{JOBS}/{job_id}")).json()
    for field in ("jobId", "status", "handoffUrl", "sessionUrl", "summary", "decisionLog", "attemptCount",
                  "usedFallback", "createdAt", "updatedAt", "completedAt"):
        assert field in body, field
    assert body["status"] in ("pending", "running", "paused_payment", "completed", "no_availability",
                              "needs_login", "captcha", "error")


async def test_invalid_json_is_400_invalid_json(org: Org) -> None:
    response = await org.agent.post(JOBS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda b: b["request"]["params"].pop("restaurant_name"), "request.params.restaurant_name"),
    (lambda b: b["request"]["params"].update(covers=0), "request.params.covers"),
    (lambda b: b["request"]["params"].update(time="7pm"), "request.params.time"),
    (lambda b: b["request"]["params"].update(date="2027-13-01"), "request.params.date"),
    (lambda b: b["request"].update(scenario="spa"), "request.scenario"),
    (lambda b: b.pop("profile"), "profile"),
    (lambda b: b.update(profileId=7), "profile"),
    (lambda b: b["profile"].pop("phone"), "profile.phone"),
    (lambda b: b["profile"].update(email="nope"), "profile.email"),
    (lambda b: b.update(consent={"paymentPolicy": "pay_now"}), "consent.paymentPolicy"),
    (lambda b: b.update(consent={"maxRetries": -1}), "consent.maxRetries"),
    (lambda b: b.update(consent={"maxJobDurationSeconds": "long"}), "consent.maxJobDurationSeconds"),
])
async def test_invalid_request_lists_each_issue_with_its_path(org: Org, day: date, mutate: Any, path: str) -> None:
    body = restaurant_job(day)
    mutate(body)
    response = await org.agent.post(JOBS, json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert path in [issue["path"] for issue in error["details"]], error


async def test_flights_need_passport_details_in_the_profile(org: Org, day: date) -> None:
    body = {"request": {"scenario": "flight", "params": {"origin": "JFK", "dest": "SFO", "date": str(day),
                                                         "passengers": 1}},
            "profile": restaurant_job(day)["profile"]}
    response = await org.agent.post(JOBS, json=body)
    assert response.status_code == 400
    paths = {issue["path"] for issue in error_of(response)["details"]}
    assert {"profile.dob", "profile.passport_number", "profile.passport_country"} <= paths


async def test_every_scenario_shape_is_accepted(org: Org, day: date) -> None:
    profile = {**restaurant_job(day)["profile"], "dob": "1990-01-01", "passport_number": "X1234567",
               "passport_country": "US"}
    requests = [
        {"scenario": "hotel", "params": {"hotel_name": "The Plaza", "city": "New York", "checkin": str(day),
                                         "checkout": str(day + timedelta(days=1)),
                                         "adults": 2}},
        {"scenario": "flight", "params": {"origin": "LGA", "dest": "SFO", "date": str(day), "passengers": 1,
                                          "cabin_class": "economy"}},
        {"scenario": "activity", "params": {"event_name": "Hamilton", "city": "New York",
                                            "event_date": str(day), "num_tickets": 2}},
    ]
    for request in requests:
        response = await org.agent.post(JOBS, json={"request": request, "profile": profile})
        assert response.status_code == 202, (request["scenario"], response.text)


@pytest.mark.parametrize(("headers", "code"), [
    ({}, "missing_authorization"),
    ({"Authorization": "Basic abc"}, "invalid_auth_scheme"),
    ({"Authorization": "Bearer"}, "empty_api_key"),
    ({"Authorization": "Bearer ogk_live_short"}, "malformed_api_key"),
    ({"Authorization": "Bearer ogk_live_" + "x" * 40}, "invalid_api_key"),
])
async def test_each_auth_failure_has_its_own_401_code(anon: httpx.AsyncClient, day: date,
                                                      headers: dict[str, str], code: str) -> None:
    response = await anon.post(JOBS, json=restaurant_job(day), headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == code


async def test_scenario_outside_the_keys_scope_is_403(server: Server, org: Org, day: date) -> None:
    key = await mint_key(server, org.name, scenarios=["hotel"], prefix="ogk")
    response = await org.agent.post(JOBS, json=restaurant_job(day), headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert error_of(response)["code"] == "scenario_not_allowed"


async def test_unknown_job_is_404_job_not_found(org: Org) -> None:
    for path in ("", "/audit"):
        response = await org.agent.get(f"{JOBS}/00000000-0000-0000-0000-000000000000{path}")
        assert response.status_code == 404
        assert error_of(response)["code"] == "job_not_found"


async def test_another_organizations_job_is_404_everywhere(server: Server, org: Org, day: date) -> None:
    job_id = (await org.agent.post(JOBS, json=restaurant_job(day))).json()["jobId"]
    stranger = await mint_key(server, f"{org.name} stranger")
    headers = {"Authorization": f"Bearer {stranger}"}
    for method, path in (("GET", ""), ("GET", "/audit"), ("POST", "/cancel")):
        response = await org.agent.request(method, f"{JOBS}/{job_id}{path}", headers=headers)
        assert response.status_code == 404, (method, path)
    listed = (await org.agent.get(JOBS, headers=headers)).json()["jobs"]
    assert job_id not in [j["jobId"] for j in listed]


async def test_idempotency_key_returns_the_existing_job(org: Org, day: date) -> None:
    body = restaurant_job(day, clientMetadata={"agentId": "bot", "idempotencyKey": "job-key-1"})
    first = await org.agent.post(JOBS, json=body)
    second = await org.agent.post(JOBS, json=body)
    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["jobId"] == first.json()["jobId"]
    assert second.headers["Idempotent-Replayed"] == "true"
    other = restaurant_job(day, clientMetadata={"idempotencyKey": "job-key-1"})
    other["request"]["params"]["covers"] = 3
    conflict = await org.agent.post(JOBS, json=other)
    assert conflict.status_code == 409
    assert error_of(conflict)["code"] == "idempotency_conflict"


async def test_concurrent_creations_with_one_key_make_one_job(org: Org, day: date) -> None:
    body = restaurant_job(day, clientMetadata={"idempotencyKey": "job-key-concurrent"})
    responses = await asyncio.gather(*(org.agent.post(JOBS, json=body) for _ in range(8)))
    assert all(r.status_code in (200, 202) for r in responses), [r.text for r in responses]
    assert len({r.json()["jobId"] for r in responses}) == 1


async def test_audit_starts_with_job_created_and_limit_is_clamped(org: Org, day: date) -> None:
    job_id = (await org.agent.post(JOBS, json=restaurant_job(day))).json()["jobId"]
    audit = (await org.agent.get(f"{JOBS}/{job_id}/audit")).json()
    assert audit["jobId"] == job_id
    assert audit["events"][0]["type"] == "job_created"
    assert audit["count"] == len(audit["events"])
    for limit, most in (("0", 1), ("-5", 1), ("1", 1), ("999999", 2000)):
        clamped = (await org.agent.get(f"{JOBS}/{job_id}/audit", params={"limit": limit})).json()
        assert 1 <= clamped["count"] <= most
    bad = await org.agent.get(f"{JOBS}/{job_id}/audit", params={"limit": "many"})
    assert bad.status_code == 400


async def test_cancel_stops_an_active_job_once(org: Org, day: date) -> None:
    body = restaurant_job(day)
    job_id = (await org.agent.post(JOBS, json=body)).json()["jobId"]
    cancelled = await org.agent.post(f"{JOBS}/{job_id}/cancel")
    if cancelled.status_code == 409:  # it had already finished: then it must be terminal
        status = (await org.agent.get(f"{JOBS}/{job_id}")).json()["status"]
        assert status not in ("pending", "running")
        return
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    events = (await org.agent.get(f"{JOBS}/{job_id}/audit")).json()["events"]
    assert "job_aborted" in [e["type"] for e in events]
    again = await org.agent.post(f"{JOBS}/{job_id}/cancel")
    assert again.status_code == 409


async def test_list_pages_with_a_cursor_and_filters_by_status(org: Org, day: date) -> None:
    created = [(await org.agent.post(JOBS, json=restaurant_job(day))).json()["jobId"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await org.agent.get(JOBS, params=params)).json()
        seen += [j["jobId"] for j in page["jobs"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))
    bad = await org.agent.get(JOBS, params={"status": "sleeping"})
    assert bad.status_code == 400
    bad_cursor = await org.agent.get(JOBS, params={"cursor": "!!!"})
    assert bad_cursor.status_code == 400


async def test_metrics_for_an_unused_provider_are_zeros_not_404(org: Org) -> None:
    response = await org.agent.get("/api/v1/metrics/providers/nobody-uses-this", params={"timeRangeDays": "0"})
    assert response.status_code == 200
    assert response.json() == {"providerId": "nobody-uses-this", "successRate": 0.0, "totalAttempts": 0,
                               "acceptedCount": 0, "manualOverrideCount": 0, "failedCount": 0,
                               "lastEventAt": None, "timeRangeDays": 1}
    clamped = (await org.agent.get("/api/v1/metrics/providers/x", params={"timeRangeDays": "9999"})).json()
    assert clamped["timeRangeDays"] == 365
    missing = await org.agent.get("/api/v1/metrics/providers/")
    assert missing.status_code == 400
    assert error_of(missing)["code"] == "missing_provider_id"


async def test_providers_list_names_ids_scenarios_and_kind(org: Org) -> None:
    providers = (await org.agent.get("/api/v1/providers")).json()["providers"]
    assert providers, "at least the sandbox providers are registered"
    for p in providers:
        assert set(p) == {"id", "displayName", "scenarios", "kind", "sandbox", "enabled"}
        assert p["kind"] in ("api", "browser")
    covered = {s for p in providers for s in p["scenarios"]}
    assert covered == {"restaurant", "hotel", "flight", "activity"}


async def test_each_key_sees_the_providers_it_may_use_in_turn(server: Server, org: Org) -> None:
    """The list is built once per key env and scenarios: keys that differ still get their own flags."""
    keys = {"live, all": org.agent_key,
            "live, restaurant": await mint_key(server, org.name, scenarios=["restaurant"]),
            "test, all": await mint_key(server, org.name, env="test")}
    seen: dict[str, set[str]] = {}
    for _ in range(2):
        for label, key in keys.items():
            answer = await org.agent.get("/api/v1/providers", headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
            enabled = {p["id"] for p in answer.json()["providers"] if p["enabled"]}
            assert seen.setdefault(label, enabled) == enabled
    providers = (await org.agent.get("/api/v1/providers")).json()["providers"]
    assert seen["live, all"] == {p["id"] for p in providers}
    assert seen["live, restaurant"] == {p["id"] for p in providers if "restaurant" in p["scenarios"]}
    assert seen["test, all"] == {p["id"] for p in providers if p["sandbox"]}
    assert seen["test, all"] != seen["live, all"] or all(p["sandbox"] for p in providers)


async def test_a_stored_profile_can_stand_in_for_the_inline_one(org: Org, day: date) -> None:
    created = await org.agent.post("/api/v1/profiles", json=restaurant_job(day)["profile"])
    assert created.status_code == 201
    body = restaurant_job(day, profileId=created.json()["profileId"])
    body.pop("profile")
    assert (await org.agent.post(JOBS, json=body)).status_code == 202
    body["profileId"] = 999999
    missing = await org.agent.post(JOBS, json=body)
    assert missing.status_code == 400
