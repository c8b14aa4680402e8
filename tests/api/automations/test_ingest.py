"""POST /api/events/ingest: the envelope checked strictly, 202 at once, matching on the runner."""

from typing import Any

import httpx
from sqlalchemy import text

from errand.models import AutomationEvent
from tests.api.automations.support import assert_error, keyed
from tests.conftest import Org, Server

INGEST = "/api/events/ingest"


def envelope(**overrides: Any) -> dict[str, Any]:
    return {"event_type": "ticket.escalated", "source_product": "psa", "client_id": "client_1",
            "payload": {"ticket_id": "T-1", "escalated_to": "p1"}, **overrides}


async def test_an_event_is_accepted_with_202_and_stored_encrypted(server: Server, org: Org) -> None:
    response = await org.admin.post(INGEST, json=envelope(id="psa-evt-1", metadata={"trace": "x"}))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["id"].startswith("evt_") and body["event_key"] == "psa-evt-1" and body["status"] == "accepted"
    assert body["received_at"].endswith("Z")
    async with server.db.unit_of_work(read_only=True) as session:
        row = await session.get(AutomationEvent, body["id"])
        assert row is not None and row.payload == {"ticket_id": "T-1", "escalated_to": "p1"}
        assert row.event_metadata == {"trace": "x"} and row.client_id == "client_1" and row.env == "live"
        raw = (await session.execute(text("SELECT payload FROM automation_events WHERE id = :id"),
                                     {"id": body["id"]})).scalar_one()
        assert "T-1" not in str(raw)


async def test_without_an_id_the_event_key_is_the_events_own(org: Org) -> None:
    body = (await org.admin.post(INGEST, json=envelope())).json()
    assert body["event_key"] == body["id"]


async def test_an_agent_key_may_send_events(server: Server, org: Org) -> None:
    async with keyed(server, org.agent_key) as client:
        assert (await client.post(INGEST, json=envelope())).status_code == 202


async def test_no_key_is_401(anon: httpx.AsyncClient) -> None:
    assert_error(await anon.post(INGEST, json=envelope()), 401, "unauthorized")


async def test_errand_is_reserved(org: Org) -> None:
    body = assert_error(await org.admin.post(INGEST, json=envelope(source_product="errand")), 400, "invalid_request")
    assert body["details"][0]["field"] == "source_product"


async def test_bad_envelopes_are_400_naming_the_field(org: Org) -> None:
    cases = [
        (envelope(payload=["not", "an", "object"]), "payload"),
        (envelope(payload="text"), "payload"),
        (envelope(payload={"blob": "x" * (70 * 1024)}), "payload"),
        (envelope(metadata={"blob": "x" * (9 * 1024)}), "metadata"),
        (envelope(unknown=1), "unknown"),
        (envelope(event_type="has space"), "event_type"),
        (envelope(event_type=""), "event_type"),
        (envelope(client_id=""), "client_id"),
        (envelope(id="x" * 201), "id"),
        (envelope(source_product="PSA"), "source_product"),
        ({"source_product": "psa", "payload": {}}, "event_type"),
        ({"event_type": "a.b", "source_product": "psa"}, "payload"),
    ]
    for sent, path in cases:
        body = assert_error(await org.admin.post(INGEST, json=sent), 400, "invalid_request")
        assert path in [d["field"] for d in body["details"]], (sent if len(str(sent)) < 300 else path, body)


async def test_a_body_that_is_no_object_or_holds_nul_is_400(org: Org) -> None:
    assert_error(await org.admin.post(INGEST, json=[1, 2]), 400, "invalid_request")
    response = await org.admin.post(INGEST, content=b"", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "invalid_request")
    raw = b'{"event_type":"a.b","source_product":"psa","payload":{"x":"a\\u0000"}}'
    nul = await org.admin.post(INGEST, content=raw, headers={"Content-Type": "application/json"})
    assert nul.status_code == 400 and nul.json()["error"] in ("invalid_request", "invalid_json")
    huge = await org.admin.post(INGEST, json=envelope(payload={"blob": "x" * (2 * 1024 * 1024)}))
    assert huge.status_code == 413
