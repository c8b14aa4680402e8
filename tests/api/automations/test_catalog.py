"""Templates (list, clone) and the event catalog."""

import httpx

from tests.api.automations.support import AGENTS, assert_error, keyed
from tests.conftest import Org, Server

TEMPLATES = "/api/templates"
EVENTS = "/api/events"
ERRAND_TYPES = {
    "job.created", "job.awaiting_approval", "job.paused_payment", "job.payment_completed", "job.hold_expired",
    "job.completed", "job.failed", "job.cancelled", "transaction.confirmed", "transaction.modified",
    "transaction.cancelled", "approval.requested", "approval.decided", "approval.expired", "execution.completed",
    "execution.failed",
}
PERSONAL = ("email", "phone", "name\"", "first_name", "last_name", "passport", "dob")


async def test_templates_list_and_filter_by_category(org: Org) -> None:
    templates = (await org.admin.get(TEMPLATES)).json()["templates"]
    assert len(templates) >= 6
    assert {"tmpl_sla_escalation", "tmpl_rebook_when_full"} <= {t["id"] for t in templates}
    sla = next(t for t in templates if t["id"] == "tmpl_sla_escalation")
    assert sla["trigger"] == {"type": "bus_event", "event_type": "ticket.sla_warning", "source_product": "psa",
                              "filters": []}
    assert sla["version"] == "1.0.0" and sla["category"] == "operations"
    security = (await org.admin.get(TEMPLATES, params={"category": "security"})).json()["templates"]
    assert security and all(t["category"] == "security" for t in security)
    assert_error(await org.admin.get(TEMPLATES, params={"category": "gardening"}), 400, "invalid_request")


async def test_every_template_clones_into_a_draft_that_activates(org: Org) -> None:
    for template in (await org.admin.get(TEMPLATES)).json()["templates"]:
        clone = await org.admin.post(f"{TEMPLATES}/{template['id']}/clone")
        assert clone.status_code == 201, clone.text
        agent = clone.json()
        assert agent["type"] == "template" and agent["status"] == "draft" and agent["name"] == template["name"]
        assert agent["steps"] == template["steps"]
        active = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "active"})
        assert active.status_code == 200, (template["id"], active.text)


async def test_template_clone_takes_a_name_and_unknown_ids_are_template_not_found(server: Server, org: Org) -> None:
    named = await org.admin.post(f"{TEMPLATES}/tmpl_booking_digest/clone", json={"name": "Our bookings"})
    assert named.status_code == 201 and named.json()["name"] == "Our bookings"
    assert_error(await org.admin.post(f"{TEMPLATES}/tmpl_nope/clone"), 404, "template_not_found")
    assert_error(await org.admin.post(f"{TEMPLATES}/tmpl_booking_digest/clone", json={"name": 3}), 400,
                 "invalid_agent_config")
    async with keyed(server, org.agent_key) as reader:
        assert (await reader.get(TEMPLATES)).status_code == 200
        assert_error(await reader.post(f"{TEMPLATES}/tmpl_booking_digest/clone"), 403, "forbidden")


async def test_event_catalog_lists_errands_own_types_beside_the_products(org: Org) -> None:
    events = (await org.admin.get(EVENTS)).json()["events"]
    errand = [e for e in events if e["source_product"] == "errand"]
    assert {e["event_type"] for e in errand} == ERRAND_TYPES
    assert {"psa", "defend", "rmm"} <= {e["source_product"] for e in events}
    for event in events:
        assert event["id"] == f"{event['source_product']}:{event['event_type']}"
        assert event["display_name"] and event["description"] and isinstance(event["sample_payload"], dict)
        for field in event["filterable_fields"]:
            assert {"path", "label", "type"} <= set(field)
    for event in errand:
        text = str(event["sample_payload"]).lower()
        assert not any(word in text for word in PERSONAL), event
    created = next(e for e in events if e["id"] == "psa:ticket.created")
    assert created["sample_payload"]["ticket_id"] == "tkt_abc123"


async def test_event_catalog_filters(org: Org) -> None:
    psa = (await org.admin.get(EVENTS, params={"source_product": "psa"})).json()["events"]
    assert psa and all(e["source_product"] == "psa" for e in psa)
    finance = (await org.admin.get(EVENTS, params={"category": "finance", "source_product": "errand"})).json()
    assert "errand:job.paused_payment" in {e["id"] for e in finance["events"]}
    assert all(e["category"] == "finance" for e in finance["events"])
    assert (await org.admin.get(EVENTS, params={"source_product": "nothing"})).json()["events"] == []
    assert_error(await org.admin.get(EVENTS, params={"category": "gardening"}), 400, "invalid_request")


async def test_catalog_and_templates_need_a_key(anon: httpx.AsyncClient) -> None:
    assert_error(await anon.get(EVENTS), 401, "unauthorized")
    assert_error(await anon.get(TEMPLATES), 401, "unauthorized")
