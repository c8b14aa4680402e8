"""Agents through the automations dialect: create, read, change, activate, delete and clone.

Every test works in an organization of its own (the ``org`` fixture), so lists hold only its
agents beside the system agents.
"""

import httpx
import pytest
from sqlalchemy import select

from errand.models import AuditEvent

from tests.api.automations.support import AGENTS, assert_error, create, definition, keyed
from tests.conftest import Org, Server, mint_key

SYSTEM_IDS = {"agent_system_payment_text", "agent_system_approval_escalation", "agent_system_finance_notify"}


async def test_created_agent_is_a_custom_draft_with_its_definition(org: Org) -> None:
    response = await org.admin.post(AGENTS, json=definition())
    assert response.status_code == 201, response.text
    agent = response.json()
    assert agent["type"] == "custom" and agent["status"] == "draft"
    assert agent["id"].startswith("agent_") and agent["org_id"] != "system"
    assert agent["trigger"]["event_type"] == "ticket.escalated"
    assert agent["steps"][0]["id"] == "notify_senior"
    assert agent["stats"] == {"total_runs": 0, "success_rate": None, "avg_duration_ms": None,
                              "last_run_at": None, "credits_used_this_month": 0}
    fetched = await org.admin.get(f"{AGENTS}/{agent['id']}")
    assert fetched.status_code == 200 and fetched.json() == agent


async def test_a_draft_may_be_incomplete_but_activating_it_names_what_is_missing(org: Org) -> None:
    agent = (await org.admin.post(AGENTS, json={"name": "Half written"})).json()
    assert agent["status"] == "draft" and agent["trigger"] is None and agent["steps"] == []
    refused = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "active"})
    body = assert_error(refused, 400, "invalid_agent_config")
    assert {d["field"] for d in body["details"]} == {"trigger", "steps"}
    assert (await org.admin.get(f"{AGENTS}/{agent['id']}")).json()["status"] == "draft"


async def test_list_shows_own_and_system_agents_with_filters(org: Org) -> None:
    mine = await create(org.admin)
    other = await create(org.admin, name="Finance one", category="finance")
    listed = (await org.admin.get(AGENTS)).json()
    ids = {a["id"] for a in listed["agents"]}
    assert {mine["id"], other["id"]} | SYSTEM_IDS == ids and listed["total"] == len(ids)
    system = [a for a in listed["agents"] if a["type"] == "system"]
    assert all(a["org_id"] == "system" and a["status"] == "active" for a in system)

    by_type = (await org.admin.get(AGENTS, params={"type": "system"})).json()
    assert {a["id"] for a in by_type["agents"]} == SYSTEM_IDS
    drafts = (await org.admin.get(AGENTS, params={"status": "draft"})).json()
    assert {a["id"] for a in drafts["agents"]} == {mine["id"], other["id"]}
    finance = (await org.admin.get(AGENTS, params={"category": "finance", "type": "custom"})).json()
    assert [a["id"] for a in finance["agents"]] == [other["id"]]
    assert_error(await org.admin.get(AGENTS, params={"status": "sleeping"}), 400, "invalid_request")


async def test_put_merges_top_level_fields_and_replaces_steps_whole(org: Org) -> None:
    agent = await create(org.admin)
    steps = [{"type": "wait", "id": "pause", "duration": "5m"},
             {"type": "notification", "id": "mail", "channel": "email", "recipients": ["ops@example.com"],
              "subject": "Escalated", "body": "Ticket {{ event_payload.ticket_id }}"}]
    response = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"description": "Changed", "steps": steps})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["description"] == "Changed" and changed["name"] == agent["name"]
    assert changed["trigger"] == agent["trigger"]
    assert [s["id"] for s in changed["steps"]] == ["pause", "mail"]
    assert changed["updated_at"] >= agent["updated_at"]


async def test_activation_validates_then_pause_and_draft_follow(org: Org) -> None:
    agent = await create(org.admin)
    active = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "active"})
    assert active.status_code == 200 and active.json()["status"] == "active"
    # An active agent stays valid: a change that breaks it is refused and nothing is stored.
    broken = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"steps": [
        {"type": "notification", "id": "n", "channel": "sms", "recipients": ["x"], "body": "{{ steps.n.output }}"}]})
    assert_error(broken, 400, "invalid_agent_config")
    assert (await org.admin.get(f"{AGENTS}/{agent['id']}")).json()["steps"] == agent["steps"]
    paused = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "paused"})
    assert paused.json()["status"] == "paused"
    draft = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "draft"})
    assert draft.json()["status"] == "draft"


@pytest.mark.parametrize(("change", "path"), [
    ({"steps": [{"type": "ai_reason", "id": "a", "model": "huge", "prompt": "p"}]}, "steps[0].model"),
    ({"steps": [{"type": "notification", "id": "n", "channel": "pigeon", "recipients": ["x"], "body": "b"}]},
     "steps[0].channel"),
    ({"steps": [{"type": "teleport", "id": "t"}]}, "steps[0].type"),
    ({"steps": [{"type": "wait", "id": "w", "duration": "soon"}]}, "steps[0].duration"),
    ({"trigger": {"type": "bus_event", "source_product": "psa", "event_type": "x",
                  "filters": [{"field": "a", "operator": "like", "value": 1}]}}, "trigger.filters[0].operator"),
    ({"conditions": [{"field": "a", "operator": "in", "value": "p1"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "a", "operator": "gt", "value": "9"}]}, "conditions[0].value"),
    ({"conditions": [{"field": "a", "operator": "contains", "value": {"k": 1}}]}, "conditions[0].value"),
    ({"execution_limit": {"cooldown_seconds": True}}, "execution_limit.cooldown_seconds"),
    ({"conflict_behavior": "polite"}, "conflict_behavior"),
    ({"client_scope": {"only": ["c1"]}}, "client_scope"),
    ({"client_scope": {"include": "c1"}}, "client_scope.include"),
    ({"execution_limit": {"max_per_hour": 0}}, "execution_limit.max_per_hour"),
    ({"name": None}, "name"),
    ({"colour": "blue"}, "colour"),
])
async def test_a_definition_of_the_wrong_shape_is_refused_naming_the_field(org: Org, change: dict,
                                                                           path: str) -> None:
    agent = await create(org.admin)
    body = assert_error(await org.admin.put(f"{AGENTS}/{agent['id']}", json=change), 400, "invalid_agent_config")
    assert path in [d["field"] for d in body["details"]], body
    assert path in body["message"]
    created = await org.admin.post(AGENTS, json={**definition(), **{k: v for k, v in change.items()}})
    assert_error(created, 400, "invalid_agent_config")


@pytest.mark.parametrize(("steps", "path"), [
    ([{"type": "branch", "id": "b", "condition": "event_payload.amount >", "if_true": "n"},
      {"type": "notification", "id": "n", "channel": "sms", "recipients": ["x"], "body": "b"}], "steps[0].condition"),
    ([{"type": "branch", "id": "b", "condition": "true", "if_true": "nowhere"}], "steps[0].if_true"),
    ([{"type": "notification", "id": "n", "channel": "sms", "recipients": ["x"],
       "body": "{{ steps.later.output.x }}"},
      {"type": "wait", "id": "later", "duration": "1m"}], "steps[0].body"),
    ([{"type": "notification", "id": "n", "channel": "sms", "recipients": ["x"], "body": "{{ secrets.key }}"}],
     "steps[0].body"),
    ([{"type": "notification", "id": "n", "channel": "sms", "recipients": ["x"], "body": "{{ unclosed"}],
     "steps[0].body"),
    ([{"type": "wait", "id": "w", "duration": "1m"}, {"type": "wait", "id": "w", "duration": "2m"}], "steps[1].id"),
    ([{"type": "wait", "id": "w", "duration": "45d"}], "steps[0].duration"),
    ([{"type": "ai_reason", "id": "a", "model": "quick", "prompt": "p", "output_schema": {"type": "shape"}}],
     "steps[0].output_schema"),
    ([{"type": "product_action", "id": "p", "operation": "restaurant.book",
       "params": {"party_size": "{{ steps.p.output.n }}"}}], "steps[0].params.party_size"),
])
async def test_activation_refuses_a_definition_that_means_nothing_naming_the_field(org: Org, steps: list,
                                                                                   path: str) -> None:
    agent = await create(org.admin, steps=steps)  # a draft keeps it
    body = assert_error(await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "active"}),
                        400, "invalid_agent_config")
    assert path in [d["field"] for d in body["details"]], body


async def test_every_step_type_with_templates_of_earlier_steps_activates(org: Org) -> None:
    steps = [
        {"type": "ai_reason", "id": "classify", "model": "standard",
         "prompt": "Classify {{ event_payload.ticket_id }}",
         "output_schema": {"type": "object", "properties": {"priority": {"type": "string"}}}},
        {"type": "branch", "id": "urgent", "condition": 'steps.classify.output.priority == "p1"', "if_false": "end"},
        {"type": "approval_gate", "id": "confirm", "message": "Book for {{ steps.classify.output.priority }}?",
         "timeout_minutes": 30},
        {"type": "product_action", "id": "book", "operation": "restaurant.book",
         "params": {"restaurantName": "Le Bernardin", "partySize": 2,
                    "note": "{{ steps['classify'].output.priority }}"}},
        {"type": "wait", "id": "later", "duration": "2h"},
        {"type": "notification", "id": "tell", "channel": "webhook", "recipients": ["https://example.com/hook"],
         "body": "{% for k in event_payload %}{{ k }}{% endfor %} booked {{ steps.book.output.transaction_id }}"},
    ]
    agent = await create(org.admin, steps=steps, conditions=[{"field": "priority", "operator": "in", "value": ["p1"]}],
                         client_scope={"exclude": ["cli_internal"]},
                         execution_limit={"max_per_hour": 10, "max_per_day": 50, "cooldown_seconds": 60},
                         conflict_behavior="override")
    active = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "active"})
    assert active.status_code == 200, active.text
    assert active.json()["client_scope"] == {"exclude": ["cli_internal"]}
    assert active.json()["execution_limit"] == {"max_per_hour": 10, "max_per_day": 50, "cooldown_seconds": 60}


async def test_activating_past_the_limit_is_agent_limit_reached(server: Server, org: Org) -> None:
    limit = server.settings.automations_agent_limit
    agents = [await create(org.admin, name=f"Agent {i}") for i in range(limit + 1)]
    for agent in agents[:limit]:
        assert (await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "active"})).status_code == 200
    refused = await org.admin.put(f"{AGENTS}/{agents[-1]['id']}", json={"status": "active"})
    assert_error(refused, 429, "agent_limit_reached")
    # Pausing one makes room.
    await org.admin.put(f"{AGENTS}/{agents[0]['id']}", json={"status": "paused"})
    assert (await org.admin.put(f"{AGENTS}/{agents[-1]['id']}", json={"status": "active"})).status_code == 200
    # Re-sending "active" to an active agent is no new activation.
    assert (await org.admin.put(f"{AGENTS}/{agents[1]['id']}", json={"status": "active"})).status_code == 200


async def test_delete_is_204_then_not_found(org: Org) -> None:
    agent = await create(org.admin)
    deleted = await org.admin.delete(f"{AGENTS}/{agent['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(await org.admin.get(f"{AGENTS}/{agent['id']}"), 404, "agent_not_found")
    assert_error(await org.admin.delete(f"{AGENTS}/{agent['id']}"), 404, "agent_not_found")
    assert_error(await org.admin.put(f"{AGENTS}/{agent['id']}", json={"name": "x"}), 404, "agent_not_found")


async def test_clone_is_a_cloned_draft_named_as_asked(org: Org) -> None:
    agent = await create(org.admin)
    await org.admin.put(f"{AGENTS}/{agent['id']}", json={"status": "active"})
    plain = await org.admin.post(f"{AGENTS}/{agent['id']}/clone")
    assert plain.status_code == 201, plain.text
    assert plain.json()["type"] == "cloned" and plain.json()["status"] == "draft"
    assert plain.json()["name"] == "P1 Escalation Notify (copy)"
    assert plain.json()["steps"] == agent["steps"] and plain.json()["id"] != agent["id"]
    named = await org.admin.post(f"{AGENTS}/{agent['id']}/clone", json={"name": "Mine"})
    assert named.status_code == 201 and named.json()["name"] == "Mine"
    assert_error(await org.admin.post(f"{AGENTS}/{agent['id']}/clone", json={"name": ""}), 400,
                 "invalid_agent_config")
    assert_error(await org.admin.post(f"{AGENTS}/agent_nope/clone"), 404, "agent_not_found")


async def test_agent_keys_read_and_admin_keys_manage(server: Server, org: Org) -> None:
    agent = await create(org.admin)
    async with keyed(server, org.agent_key) as reader:
        assert (await reader.get(AGENTS)).status_code == 200
        assert (await reader.get(f"{AGENTS}/{agent['id']}")).status_code == 200
        assert_error(await reader.post(AGENTS, json=definition()), 403, "forbidden")
        assert_error(await reader.put(f"{AGENTS}/{agent['id']}", json={"name": "x"}), 403, "forbidden")
        assert_error(await reader.delete(f"{AGENTS}/{agent['id']}"), 403, "forbidden")
        assert_error(await reader.post(f"{AGENTS}/{agent['id']}/clone"), 403, "forbidden")


async def test_no_key_or_a_bad_key_is_unauthorized(anon: httpx.AsyncClient) -> None:
    assert_error(await anon.get(AGENTS), 401, "unauthorized")
    assert_error(await anon.get(AGENTS, headers={"X-Integration-Key": "ar_live_" + "x" * 40}), 401, "unauthorized")
    assert_error(await anon.post(AGENTS, json=definition()), 401, "unauthorized")


async def test_another_organizations_agent_is_not_found(server: Server, org: Org) -> None:
    agent = await create(org.admin)
    async with keyed(server, await mint_key(server, "Other " + org.name, role="admin")) as other:
        for response in (await other.get(f"{AGENTS}/{agent['id']}"),
                         await other.put(f"{AGENTS}/{agent['id']}", json={"status": "paused"}),
                         await other.delete(f"{AGENTS}/{agent['id']}"),
                         await other.post(f"{AGENTS}/{agent['id']}/clone")):
            assert_error(response, 404, "agent_not_found")
        assert agent["id"] not in {a["id"] for a in (await other.get(AGENTS)).json()["agents"]}
    assert (await org.admin.get(f"{AGENTS}/{agent['id']}")).status_code == 200


async def test_test_keys_see_test_agents_only(server: Server, org: Org) -> None:
    live = await create(org.admin)
    async with keyed(server, await mint_key(server, org.name, role="admin", env="test")) as test_admin:
        assert_error(await test_admin.get(f"{AGENTS}/{live['id']}"), 404, "agent_not_found")
        test_agent = await create(test_admin, name="Test mode")
        ids = {a["id"] for a in (await test_admin.get(AGENTS)).json()["agents"]}
        assert test_agent["id"] in ids and live["id"] not in ids
    assert_error(await org.admin.get(f"{AGENTS}/{test_agent['id']}"), 404, "agent_not_found")


async def test_changes_to_agents_are_audited(server: Server, org: Org) -> None:
    org_id = (await org.admin.get("/api/credits")).json()["org_id"]
    agent = await create(org.admin)
    await org.admin.put(f"{AGENTS}/{agent['id']}", json={"description": "New", "status": "active"})
    await org.admin.delete(f"{AGENTS}/{agent['id']}")
    await org.admin.put(f"{AGENTS}/agent_system_finance_notify", json={"status": "paused"})
    async with server.db.unit_of_work(read_only=True) as session:
        rows = (await session.execute(select(AuditEvent).where(AuditEvent.subject_type == "agent",
                                                               AuditEvent.subject_id.in_(
                                                                   [agent["id"], "agent_system_finance_notify"]))
                                      .order_by(AuditEvent.created_at, AuditEvent.id))).scalars().all()
    mine = [r for r in rows if r.organization_id == org_id]
    assert [(r.type, r.decision) for r in mine] == [
        ("agent.created", None), ("agent.status_changed", "active"), ("agent.updated", None),
        ("agent.deleted", None), ("agent.status_changed", "paused")]
    assert mine[2].data["fields"] == ["description"] and all(r.actor.startswith("api_key:") for r in mine)
