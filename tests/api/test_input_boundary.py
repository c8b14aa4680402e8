"""One input boundary: every dialect gives hostile input the same verdict, in its own error body.

Deeply nested JSON, oversized bodies, NUL and other control characters, non-finite numbers,
duplicate keys and two spellings of one field are refused with 400 (413 for size) before
anything happens, on SQLite and PostgreSQL alike; validation errors name each field in
Errand's own words.
"""

import base64
import json
from typing import Any

import httpx
import pytest

from errand.kit import webhooks
from tests.conftest import Org, Server

BOOK = "/api/v1/agent/restaurant/book"
CANCEL = "/api/v1/agent/restaurant/cancel"
MODIFY = "/api/v1/agent/restaurant/modify"
JOBS = "/api/v1/execution-jobs"
POLICIES = "/api/v1/policies"
PROFILES = "/api/v1/profiles"
EVENTS = "/api/v1/provider-events"
DEEP = "[" * 5000 + "]" * 5000
JSON_HEADERS = {"Content-Type": "application/json"}
PROFILE = {"first_name": "Alex", "last_name": "Traveler", "email": "alex@example.com", "phone": "+15551234567"}


def job_body(day: Any, **extra: Any) -> dict[str, Any]:
    return {"request": {"scenario": "restaurant", "params": {
        "restaurant_name": "Golden Gate Grill", "city": "San Francisco", "date": day.isoformat(), "time": "19:00",
        "covers": 2}}, "profile": PROFILE, **extra}


def execution_error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


def reservations_error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == ("INVALID_REQUEST" if status == 400 else "PAYLOAD_TOO_LARGE"), error
    return error


# --- nesting and size -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [JOBS, PROFILES, EVENTS])
async def test_deeply_nested_body_is_the_execution_dialects_400(org: Org, path: str) -> None:
    response = await org.agent.post(path, content=DEEP, headers=JSON_HEADERS)

    error = execution_error(response)
    assert error["code"] == "invalid_json"
    assert "nested more than 32 levels" in error["message"]


@pytest.mark.parametrize("path", [BOOK, POLICIES])
async def test_deeply_nested_body_is_the_reservations_dialects_400(org: Org, path: str) -> None:
    reservations_error(await org.admin.post(path, content=DEEP, headers=JSON_HEADERS))


async def test_deeply_nested_body_is_the_automations_dialects_400(org: Org) -> None:
    response = await org.admin.post("/api/approvals/apr_x/decision", content=DEEP, headers=JSON_HEADERS)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_json" and response.json()["status"] == 400


async def test_deeply_nested_client_metadata_is_refused(org: Org, day: Any) -> None:
    body = json.dumps(job_body(day))[:-1] + ', "clientMetadata": {"note": ' + DEEP + "}}"

    error = execution_error(await org.agent.post(JOBS, content=body, headers=JSON_HEADERS))

    assert error["code"] == "invalid_json"


async def test_deeply_nested_cursor_is_refused(org: Org) -> None:
    cursor = base64.urlsafe_b64encode(DEEP.encode()).decode().rstrip("=")

    error = execution_error(await org.agent.get(JOBS, params={"cursor": cursor}))

    assert error["code"] == "invalid_request"
    assert error["details"] == [{"path": "cursor", "message": "invalid"}]


async def test_deeply_nested_signed_provider_event_is_refused(anon: httpx.AsyncClient, server: Server) -> None:
    body = ('{"type": "payment_completed", "provider_id": "web-tables", "extra": ' + DEEP + "}").encode()
    headers = webhooks.sign_headers(server.settings.provider_events_signing_secret("web-tables"), "evt_deep", body)

    response = await anon.post(EVENTS, content=body,
                               headers={**headers, **JSON_HEADERS, webhooks.PROVIDER_HEADER: "web-tables"})

    assert execution_error(response)["code"] == "invalid_json"


async def test_deeply_nested_body_to_the_sandbox_api_is_its_400(anon: httpx.AsyncClient) -> None:
    response = await anon.post("/sandbox/api/sandbox-tables/restaurants/x/holds", content=DEEP,
                               headers={**JSON_HEADERS, "Idempotency-Key": "k1"})

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid" and "nested" in response.json()["message"]


async def test_oversized_body_is_413_before_authentication(anon: httpx.AsyncClient) -> None:
    big = b'{"x": "' + b"a" * (1024 * 1024) + b'"}'

    response = await anon.post(JOBS, content=big, headers=JSON_HEADERS)  # no API key at all

    assert execution_error(response, 413)["code"] == "payload_too_large"


async def test_oversized_chunked_body_without_content_length_is_413(anon: httpx.AsyncClient) -> None:
    async def chunks():  # no Content-Length: the boundary counts the chunks
        yield b'{"x": "'
        for _ in range(300):
            yield b"a" * 8192

    response = await anon.post(BOOK, content=chunks(), headers=JSON_HEADERS)

    reservations_error(response, 413)


# --- control characters -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/transactions/%00", "/api/v1/transactions/txn%01x"])
async def test_control_character_in_a_path_id_is_400(org: Org, path: str) -> None:
    reservations_error(await org.agent.get(path))


async def test_control_character_in_a_job_id_or_query_is_400(org: Org) -> None:
    assert execution_error(await org.agent.get(f"{JOBS}/job%00"))["code"] == "invalid_request"
    assert execution_error(await org.agent.get(f"{JOBS}?status=%00"))["code"] == "invalid_request"


async def test_nul_in_cancel_reason_is_refused_and_the_booking_stays_confirmed(org: Org, book: Any) -> None:
    booked = await book("18:00", 2)

    response = await org.agent.post(CANCEL, json={"transactionId": booked["transactionId"], "reason": "oops\u0000"})

    error = reservations_error(response)
    assert error["details"] == [{"field": "reason", "message": "must not contain NUL or other control characters"}]
    detail = (await org.agent.get(f"/api/v1/transactions/{booked['transactionId']}")).json()
    assert detail["status"] == "confirmed"
    assert [e["type"] for e in detail["events"]][-1] == "transaction.confirmed"
    # The provider's reservation is still live: a proper cancel goes through to it.
    cancelled = await org.agent.post(CANCEL, json={"transactionId": booked["transactionId"], "reason": "plans"})
    assert cancelled.status_code == 200, cancelled.text


async def test_nul_in_a_policy_name_is_refused(org: Org) -> None:
    response = await org.admin.post(POLICIES, json={"name": "a\u0000b", "type": "RATE_LIMIT",
                                                    "config": {"maxRequestsPerHour": 5}})
    reservations_error(response)


async def test_nul_in_a_key_of_client_metadata_is_refused(org: Org, day: Any) -> None:
    error = execution_error(await org.agent.post(JOBS, json=job_body(day, clientMetadata={"a\u0000": 1})))
    assert error["code"] == "invalid_request"


# --- idempotency keys ------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["clé".encode(), b"a" * 256, b""])
async def test_idempotency_key_outside_printable_ascii_is_refused(org: Org, booking_request: Any,
                                                                  key: bytes) -> None:
    response = await org.agent.post(BOOK, json=booking_request("12:00"), headers={"Idempotency-Key": key})

    error = reservations_error(response)
    assert error["details"][0]["field"] == "Idempotency-Key"


@pytest.mark.parametrize("header", ["Idempotency-Key", "Authorization"])
async def test_a_single_valued_header_sent_twice_is_refused_and_books_nothing(
    org: Org, booking_request: Any, header: str
) -> None:
    auth = org.agent.headers["Authorization"]
    twice = [("Idempotency-Key", "dup-a"), ("Idempotency-Key", "dup-b")] if header == "Idempotency-Key" else [
        ("Authorization", auth), ("Authorization", auth)]
    body = booking_request("12:00")
    response = await org.agent.post(BOOK, json=body, headers=twice)

    error = reservations_error(response)
    assert error["details"] == [{"field": header, "message": "must be sent once"}]
    # Nothing was booked or stored under the key: the same request now books afresh.
    fresh = await org.agent.post(BOOK, json=body, headers={"Idempotency-Key": "dup-a"})
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers, fresh.text


async def test_job_cancel_refuses_a_non_ascii_idempotency_key(org: Org) -> None:
    response = await org.agent.post(f"{JOBS}/job_x/cancel", headers={"Idempotency-Key": "clé".encode()})

    assert execution_error(response)["details"][0]["path"] == "Idempotency-Key"


async def test_client_metadata_idempotency_key_must_be_printable_ascii(org: Org, day: Any) -> None:
    error = execution_error(await org.agent.post(JOBS, json=job_body(day, clientMetadata={"idempotencyKey": "clé"})))

    assert error["details"] == [{"path": "clientMetadata.idempotencyKey",
                                 "message": "must be 1 to 255 printable ASCII characters (0x20-0x7E)"}]


# --- numbers, duplicates, spellings -------------------------------------------------------------


@pytest.mark.parametrize("number", ["1e999", "Infinity", "-Infinity", "NaN"])
async def test_non_finite_numbers_in_a_policy_config_are_refused(org: Org, number: str) -> None:
    body = '{"type": "SPENDING_LIMIT", "config": {"maxAmountUsd": %s}}' % number

    error = reservations_error(await org.admin.post(POLICIES, content=body, headers=JSON_HEADERS))

    assert error["details"] == [{"field": "config.maxAmountUsd", "message": "must be a finite number"}]


async def test_non_finite_number_in_a_policy_patch_is_refused(org: Org) -> None:
    created = await org.admin.post(POLICIES, json={"type": "SPENDING_LIMIT", "config": {"maxAmountUsd": 100}})
    assert created.status_code == 201, created.text

    response = await org.admin.patch(f"{POLICIES}/{created.json()['id']}",
                                     content='{"config": {"maxAmountUsd": 1e999}}', headers=JSON_HEADERS)

    reservations_error(response)
    listed = (await org.admin.get(POLICIES)).json()["policies"]
    assert [p["config"] for p in listed] == [{"maxAmountUsd": 100.0}]


async def test_duplicate_keys_are_refused(org: Org, booking_request: Any) -> None:
    body = json.dumps(booking_request("12:15"))[:-1] + ', "city": "Paris"}'

    error = reservations_error(await org.agent.post(BOOK, content=body, headers=JSON_HEADERS))

    assert error["details"] == [{"field": "city", "message": "appears more than once in its object"}]


async def test_both_spellings_of_a_field_are_refused(org: Org, booking_request: Any) -> None:
    response = await org.agent.post(BOOK, json={**booking_request("12:30", 2), "party_size": 3})

    error = reservations_error(response)
    assert "partySize" in error["message"] and "party_size" in error["message"]


async def test_both_spellings_inside_updates_are_refused(org: Org, book: Any) -> None:
    booked = await book("12:45")

    response = await org.agent.post(MODIFY, json={"transactionId": booked["transactionId"],
                                                  "updates": {"partySize": 2, "party_size": 3}})

    assert reservations_error(response)["details"][0]["field"] == "updates.party_size"


# --- validation messages and lengths -----------------------------------------------------------


async def test_profile_errors_name_each_field_in_errands_words(org: Org) -> None:
    response = await org.agent.post(PROFILES, json={**PROFILE, "email": "not-an-email", "phone": "call me"})

    error = execution_error(response)
    assert error["details"] == [
        {"path": "email", "message": "must be an e-mail address"},
        {"path": "phone", "message": "must be a phone number, e.g. +15551234567"},
    ]
    for leak in ("not-an-email", "call me", "pydantic", "Value error", "https://", "Profile"):
        assert leak not in response.text


async def test_job_validation_errors_never_echo_library_text(org: Org, day: Any) -> None:
    body = job_body(day)
    body["request"]["params"]["covers"] = "4"
    body["consent"] = {"allowVenueSwitch": "yes"}

    error = execution_error(await org.agent.post(JOBS, json=body))

    assert {"path": "request.params.covers", "message": "must be an integer"} in error["details"]
    assert {"path": "consent.allowVenueSwitch", "message": "must be true or false"} in error["details"]
    assert "Input should be" not in json.dumps(error)


async def test_values_longer_than_their_column_are_refused(org: Org, book: Any, day: Any) -> None:
    booked = await book("13:00")
    long_reason = await org.agent.post(CANCEL, json={"transactionId": booked["transactionId"], "reason": "x" * 501})
    assert reservations_error(long_reason)["details"] == [{"field": "reason",
                                                           "message": "must be at most 500 characters"}]
    big_metadata = await org.agent.post(JOBS, json=job_body(day, clientMetadata={"blob": "x" * 5000}))
    assert execution_error(big_metadata)["details"] == [{"path": "clientMetadata",
                                                         "message": "must be at most 4096 bytes as JSON"}]


async def test_a_policy_needs_no_name(org: Org) -> None:
    response = await org.admin.post(POLICIES, json={"type": "RATE_LIMIT", "config": {"maxRequestsPerHour": 500}})

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "RATE_LIMIT"


async def test_a_signed_provider_event_passes_the_boundary_with_its_bytes_intact(
    anon: httpx.AsyncClient, server: Server
) -> None:
    body = b'{"type": "hold_expired", "provider_id": "web-tables",  "hold_id": "hold_nobody"}'
    headers = webhooks.sign_headers(server.settings.provider_events_signing_secret("web-tables"), "evt_boundary_ok",
                                    body)

    response = await anon.post(EVENTS, content=body,
                               headers={**headers, **JSON_HEADERS, webhooks.PROVIDER_HEADER: "web-tables"})

    assert response.status_code == 200, response.text
    assert response.json()["received"] is True


@pytest.mark.parametrize("profile_id", [9223372036854775808, 99999999999999999999999, 0, -1])
async def test_a_profile_id_no_column_can_hold_is_a_400_not_a_500(org: Org, day: Any, profile_id: int) -> None:
    body = job_body(day)
    body.pop("profile")
    body["profileId"] = profile_id

    error = execution_error(await org.agent.post(JOBS, json=body))

    assert error["details"] == [{"path": "profileId", "message": "must be a positive integer up to 9223372036854775807"}]
