"""``POST /api/v1/provider-events``: signed reports from providers about what happened after the handoff.

Each provider signs with its own secret and names itself in ``errand-provider-id``; an event
is matched to a job by provider and reference; one payment is recorded once.
"""

import time
import uuid
from datetime import date
from typing import Any

import httpx

from errand.kit import webhooks
from errand.models import Job
from tests.browser.support import audit, eventually, job, metrics, of_type, run
from tests.conftest import Org, Server, signed_provider_event as _signed

EVENTS = "/api/v1/provider-events"



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
    assert view["status"] == "completed" and view["payment"]["status"] == "paid", view


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
    headers = webhooks.sign_headers(server.settings.provider_events_signing_secret("web-tables"), "msg_bad", not_json)
    headers["errand-provider-id"] = "web-tables"
    assert (await anon.post(EVENTS, content=not_json, headers=headers)).status_code == 400


def _payment(body: dict[str, Any], provider_id: str = "sandbox-tables", **fields: Any) -> dict[str, Any]:
    """A payment of the paused job ``body`` as ``provider_id`` would report it, naming the job's reference."""
    return {"type": "payment_completed", "provider_id": provider_id, "hold_id": body["result"]["holdId"],
            "reference": fields.pop("reference", None), "confirmation": "SBX-TEST", "occurred_at": None, **fields}


async def _reference(server: Server, job_id: str) -> str:
    """The checkout idempotency key the job gave its provider (what the provider reports as ``reference``)."""
    async with server.db.unit_of_work(read_only=True) as session:
        job_row = await session.get(Job, job_id)
        assert job_row is not None and job_row.checkout_intent
        return job_row.checkout_intent["key"]


async def test_one_providers_secret_cannot_speak_for_another(
    server: Server, org: Org, day: date, anon: httpx.AsyncClient
) -> None:
    body = await _paused_at_the_api_provider(org, day)
    event = _payment(body, reference=await _reference(server, body["jobId"]))
    # Signed by sandbox-air, claiming to be sandbox-tables (in the header and the body).
    raw, headers = _signed(server, event, secret=server.settings.provider_events_signing_secret("sandbox-air"))
    claimed = await anon.post(EVENTS, content=raw, headers=headers)
    assert claimed.status_code == 401 and claimed.json()["error"]["code"] == "invalid_signature", claimed.text
    # Signed by sandbox-air as sandbox-air, but the body speaks for sandbox-tables.
    raw, headers = _signed(server, event, signer="sandbox-air")
    smuggled = await anon.post(EVENTS, content=raw, headers=headers)
    assert smuggled.status_code == 401 and smuggled.json()["error"]["code"] == "invalid_signature"
    # No provider named: nothing to verify with.
    raw, headers = _signed(server, event)
    del headers["errand-provider-id"]
    assert (await anon.post(EVENTS, content=raw, headers=headers)).status_code == 401
    assert of_type(await audit(org.agent, body["jobId"]), "payment_completed") == []


async def test_an_airlines_event_cannot_mark_a_restaurant_job_paid(
    server: Server, org: Org, day: date, anon: httpx.AsyncClient
) -> None:
    body = await _paused_at_the_api_provider(org, day)
    reference = await _reference(server, body["jobId"])
    raw, headers = _signed(server, _payment(body, "sandbox-air", reference=reference))
    mismatch = await anon.post(EVENTS, content=raw, headers=headers)
    assert mismatch.status_code == 409 and mismatch.json()["error"]["code"] == "provider_mismatch", mismatch.text
    view = (await org.agent.get(f"/api/v1/execution-jobs/{body['jobId']}")).json()
    assert "confirmation" not in view["result"] or view["result"]["confirmation"] is None
    assert of_type(await audit(org.agent, body["jobId"]), "payment_completed") == []
    assert (await metrics(org.agent, "sandbox-air"))["manualOverrideCount"] == 0

    # The restaurant's own report of the same reference is applied.
    raw, headers = _signed(server, _payment(body, reference=reference))
    applied = await anon.post(EVENTS, content=raw, headers=headers)
    assert applied.status_code == 200 and applied.json()["jobId"] == body["jobId"]


async def test_the_same_payment_under_another_event_id_is_recorded_once(
    server: Server, org: Org, day: date, anon: httpx.AsyncClient
) -> None:
    body = await _paused_at_the_api_provider(org, day)
    event = _payment(body, reference=await _reference(server, body["jobId"]), confirmation="SBX-TWICE")
    answers = []
    for _ in range(2):
        raw, headers = _signed(server, event)  # a fresh webhook-id each time
        answers.append(await anon.post(EVENTS, content=raw, headers=headers))
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True]
    assert answers[1].json()["jobId"] == body["jobId"]
    assert len(of_type(await audit(org.agent, body["jobId"]), "payment_completed")) == 1


async def test_over_long_headers_and_fields_are_invalid_requests(
    server: Server, org: Org, day: date, anon: httpx.AsyncClient
) -> None:
    event = {"type": "payment_completed", "provider_id": "sandbox-tables", "hold_id": "sbk_x", "reference": None,
             "confirmation": "SBX-LONG", "occurred_at": None}
    cases = [
        ({"msg_id": "w" * 400}, {}),
        ({}, {"webhook-signature": "v1," + "A" * 2000}),
        ({}, {"webhook-timestamp": "9" * 400}),
        ({}, {"errand-provider-id": "p" * 400}),
        ({"msg_id": "with space"}, {}),
    ]
    for signing, overrides in cases:
        raw, headers = _signed(server, event, **signing)
        refused = await anon.post(EVENTS, content=raw, headers={**headers, **overrides})
        assert refused.status_code == 400, (signing, overrides, refused.text)
        assert refused.json() == {"error": {"code": "invalid_request", "message": refused.json()["error"]["message"]}}
    for field, limit in (("hold_id", 120), ("reference", 255), ("confirmation", 120), ("type", 40)):
        raw, headers = _signed(server, {**event, field: "x" * (limit + 1)})
        refused = await anon.post(EVENTS, content=raw, headers=headers)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_event", field
        assert "x" * 50 not in refused.text  # the submitted value is not echoed


async def test_a_forged_host_on_the_payment_page_still_reaches_the_job(org: Org, day: date) -> None:
    """The sandbox sends the event to the configured receiver, whatever ``Host`` the payer's request named."""
    body = await _paused_at_the_api_provider(org, day)
    async with httpx.AsyncClient(timeout=30, headers={"Host": "evil.example"}) as user:
        page = await user.get(body["handoffUrl"])
        paid = await user.post(body["handoffUrl"], data={"card_number": "4242 4242 4242 4242", "expiry": "12/34",
                                                         "cvc": "123"})
    assert page.status_code == paid.status_code == 200, paid.text
    for answer in (page, paid):
        assert "evil.example" not in answer.text and "evil.example" not in str(answer.headers)
    event = await eventually(org.agent, body["jobId"], "payment_completed")
    assert event["providerId"] == "sandbox-tables" and event["confirmation"].startswith("SBX-")


async def test_no_answer_or_redirect_of_errand_names_the_requests_host(anon: httpx.AsyncClient) -> None:
    """Trailing-slash redirects (built from ``Host`` by Starlette) are off everywhere; the sandbox links from configuration."""
    for path in ("/sandbox", "/healthz/", "/api/v1/execution-jobs/", "/api/v1/provider-events/",
                 "/api/v1/agent/restaurant/book/", "/api/agents/", "/sandbox/web/web-tables",
                 "/sandbox/web/web-tables/", "/sandbox/checkout/not-a-token", "/sandbox/api/sandbox-tables/ledger/"):
        answer = await anon.get(path, headers={"Host": "evil.example"})
        assert "evil.example" not in answer.text and "evil.example" not in str(answer.headers), path


async def test_malformed_signatures_and_bodies_are_refused_never_a_crash(
    server: Server, anon: httpx.AsyncClient
) -> None:
    event = {"type": "payment_completed", "provider_id": "sandbox-tables", "hold_id": "sbk_x", "reference": None,
             "confirmation": "SBX-ODD", "occurred_at": None}
    raw, headers = _signed(server, event)
    for signature in ("garbage", "v1,@@@", "v1,a,b", "v1,abc  v1,def", "v2,abc"):
        answer = await anon.post(EVENTS, content=raw, headers={**headers, "webhook-signature": signature})
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_signature", signature
    for timestamp in ("nan", "1e999", "-1", "soon"):
        answer = await anon.post(EVENTS, content=raw, headers={**headers, "webhook-timestamp": timestamp})
        assert answer.status_code == 401, timestamp
    not_utf8 = b'{"type": "\xff"}'
    headers = {**webhooks.sign_headers(server.settings.provider_events_signing_secret("sandbox-tables"), "msg_bin",
                                       b"{}"), "errand-provider-id": "sandbox-tables"}
    refused = await anon.post(EVENTS, content=not_utf8, headers=headers)  # the input boundary answers first
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_json", refused.text


async def test_an_event_of_a_type_errand_does_not_know_is_refused_and_changes_nothing(
    server: Server, anon: httpx.AsyncClient
) -> None:
    raw, headers = _signed(server, {"type": "refund", "provider_id": "sandbox-tables", "hold_id": "sbk_refund"})

    answer = await anon.post(EVENTS, content=raw, headers=headers)

    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_event", answer.text
    assert answer.json()["error"]["details"][0]["path"] == "type"
