"""``POST /api/v1/provider-events``: signed reports from providers about what happened after the handoff."""

import json
import time
import uuid
from datetime import date
from typing import Any

import httpx

from errand.kit import webhooks
from tests.browser.support import audit, eventually, job, metrics, of_type, run
from tests.conftest import Org, Server

EVENTS = "/api/v1/provider-events"


def _signed(server: Server, body: dict[str, Any], msg_id: str | None = None,
            secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    headers = webhooks.sign_headers(secret or server.settings.provider_events_signing_secret(),
                                    msg_id or f"msg_{uuid.uuid4().hex}", raw)
    return raw, {**headers, "content-type": "application/json"}


async def _paused_at_the_api_provider(org: Org, day: date) -> dict[str, Any]:
    body, _ = await run(org.agent, job("restaurant", day, "Le Bernardin", providers=["sandbox-tables"]))
    assert body["status"] == "paused_payment" and body["providerId"] == "sandbox-tables", body
    return body


async def test_the_api_providers_payment_page_reports_the_payment_to_the_job(org: Org, day: date) -> None:
    """The sandbox names the job's checkout idempotency key as the event's reference."""
    body = await _paused_at_the_api_provider(org, day)
    async with httpx.AsyncClient(timeout=30) as user:
        paid = await user.post(body["handoffUrl"], data={"card_number": "4242 4242 4242 4242", "expiry": "12/34",
                                                         "cvc": "123"})
    assert paid.status_code == 200, paid.text
    event = await eventually(org.agent, body["jobId"], "payment_completed")
    assert event["providerId"] == "sandbox-tables" and event["confirmation"].startswith("SBX-")
    assert event["holdId"] == body["result"]["holdId"]
    view = (await org.agent.get(f"/api/v1/execution-jobs/{body['jobId']}")).json()
    assert view["result"]["confirmation"] == event["confirmation"]
    assert view["status"] == "paused_payment"


async def test_a_bad_signature_is_refused_and_changes_nothing(server: Server, org: Org, day: date,
                                                             anon: httpx.AsyncClient) -> None:
    body = await _paused_at_the_api_provider(org, day)
    event = {"type": "payment_completed", "provider_id": "sandbox-tables", "hold_id": body["result"]["holdId"],
             "reference": None, "confirmation": "SBX-FORGED", "occurred_at": "2027-01-01T00:00:00Z"}
    raw, headers = _signed(server, event, secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=")
    forged = await anon.post(EVENTS, content=raw, headers=headers)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"

    raw, headers = _signed(server, event)
    tampered = raw.replace(b"SBX-FORGED", b"SBX-FORGED2")
    assert (await anon.post(EVENTS, content=tampered, headers=headers)).status_code == 401
    stale = {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}
    assert (await anon.post(EVENTS, content=raw, headers=stale)).status_code == 401
    unsigned = {k: v for k, v in headers.items() if k != "webhook-signature"}
    assert (await anon.post(EVENTS, content=raw, headers=unsigned)).status_code == 401

    assert of_type(await audit(org.agent, body["jobId"]), "payment_completed") == []


async def test_each_event_is_applied_once_and_an_unknown_hold_is_kept_unmatched(
    server: Server, org: Org, day: date, anon: httpx.AsyncClient
) -> None:
    body = await _paused_at_the_api_provider(org, day)
    event = {"type": "payment_completed", "provider_id": "sandbox-tables", "hold_id": body["result"]["holdId"],
             "reference": None, "confirmation": "SBX-ONCE", "occurred_at": "2027-01-01T00:00:00Z"}
    raw, headers = _signed(server, event, msg_id=f"pev_test_{uuid.uuid4().hex}")
    first = await anon.post(EVENTS, content=raw, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["duplicate"] is False and first.json()["jobId"] == body["jobId"]
    again = await anon.post(EVENTS, content=raw, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert len(of_type(await audit(org.agent, body["jobId"]), "payment_completed")) == 1
    assert (await metrics(org.agent, "sandbox-tables"))["manualOverrideCount"] == 0

    # A hold no job knows: kept (so a redelivery is still recognised), applied to nothing.
    unknown = {**event, "provider_id": "web-tables", "hold_id": "sbk_unknown", "confirmation": "SBX-X"}
    raw, headers = _signed(server, unknown)
    unmatched = await anon.post(EVENTS, content=raw, headers=headers)
    assert unmatched.status_code == 200 and unmatched.json()["jobId"] is None

    not_json = b"{nope"
    headers = webhooks.sign_headers(server.settings.provider_events_signing_secret(), "msg_bad", not_json)
    assert (await anon.post(EVENTS, content=not_json, headers=headers)).status_code == 400
