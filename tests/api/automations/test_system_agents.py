"""System agents: Errand's own, visible to every organization, paused or resumed per organization only."""

import pytest

from tests.api.automations.support import AGENTS, assert_error, keyed
from tests.conftest import Org, Server, mint_key

PAYMENT_TEXT = "agent_system_payment_text"
ESCALATION = "agent_system_approval_escalation"
FINANCE = "agent_system_finance_notify"


async def test_system_agents_are_real_definitions_on_errands_own_events(org: Org) -> None:
    agents = {a["id"]: a for a in (await org.admin.get(AGENTS, params={"type": "system"})).json()["agents"]}
    assert set(agents) == {PAYMENT_TEXT, ESCALATION, FINANCE}
    assert agents[PAYMENT_TEXT]["trigger"]["event_type"] == "job.paused_payment"
    assert agents[PAYMENT_TEXT]["steps"][0]["channel"] == "sms"
    assert [s["type"] for s in agents[ESCALATION]["steps"]] == ["wait", "product_action", "branch", "notification"]
    assert agents[ESCALATION]["steps"][0]["duration"] == "30m"
    assert agents[FINANCE]["trigger"]["event_type"] == "transaction.confirmed"
    assert agents[FINANCE]["trigger"]["filters"] == [{"field": "amount_usd", "operator": "gt", "value": 1000}]
    assert agents[FINANCE]["steps"][0]["recipients"] == ["role:finance"]
    for agent in agents.values():
        assert agent["org_id"] == "system" and agent["trigger"]["source_product"] == "errand"
    detail = await org.admin.get(f"{AGENTS}/{FINANCE}")
    assert detail.status_code == 200 and detail.json()["steps"] == agents[FINANCE]["steps"]


@pytest.mark.parametrize("body", [
    {"name": "Mine now"},
    {"status": "paused", "name": "Mine now"},
    {"status": "draft"},
    {"steps": []},
    {},
])
async def test_any_change_to_a_system_agent_but_pause_or_resume_is_forbidden(org: Org, body: dict) -> None:
    assert_error(await org.admin.put(f"{AGENTS}/{FINANCE}", json=body), 403, "forbidden")
    assert (await org.admin.get(f"{AGENTS}/{FINANCE}")).json()["name"] == "Large Booking Alert"


async def test_a_system_agent_cannot_be_deleted(org: Org) -> None:
    assert_error(await org.admin.delete(f"{AGENTS}/{FINANCE}"), 403, "forbidden")


async def test_pausing_a_system_agent_is_one_organizations_own(server: Server, org: Org) -> None:
    paused = await org.admin.put(f"{AGENTS}/{PAYMENT_TEXT}", json={"status": "paused"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused" and paused.json()["type"] == "system"
    listed = (await org.admin.get(AGENTS, params={"status": "paused"})).json()["agents"]
    assert [a["id"] for a in listed] == [PAYMENT_TEXT]

    async with keyed(server, await mint_key(server, "Other " + org.name, role="admin")) as other:
        assert (await other.get(f"{AGENTS}/{PAYMENT_TEXT}")).json()["status"] == "active"
        assert (await other.put(f"{AGENTS}/{ESCALATION}", json={"status": "paused"})).status_code == 200
    # The other organization's pause did not touch this one, nor this one's mode the other mode.
    assert (await org.admin.get(f"{AGENTS}/{ESCALATION}")).json()["status"] == "active"
    async with keyed(server, await mint_key(server, org.name, role="admin", env="test")) as test_admin:
        assert (await test_admin.get(f"{AGENTS}/{PAYMENT_TEXT}")).json()["status"] == "active"

    resumed = await org.admin.put(f"{AGENTS}/{PAYMENT_TEXT}", json={"status": "active"})
    assert resumed.json()["status"] == "active"
    assert (await org.admin.get(f"{AGENTS}/{PAYMENT_TEXT}")).json()["status"] == "active"


async def test_an_agent_key_may_not_pause_a_system_agent(server: Server, org: Org) -> None:
    async with keyed(server, org.agent_key) as reader:
        assert_error(await reader.put(f"{AGENTS}/{PAYMENT_TEXT}", json={"status": "paused"}), 403, "forbidden")


async def test_cloning_a_system_agent_gives_an_editable_draft(org: Org) -> None:
    clone = await org.admin.post(f"{AGENTS}/{ESCALATION}/clone", json={"name": "Our escalation"})
    assert clone.status_code == 201, clone.text
    agent = clone.json()
    assert agent["type"] == "cloned" and agent["status"] == "draft" and agent["org_id"] != "system"
    steps = agent["steps"]
    steps[0]["duration"] = "15m"
    changed = await org.admin.put(f"{AGENTS}/{agent['id']}", json={"steps": steps, "status": "active"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["steps"][0]["duration"] == "15m" and changed.json()["status"] == "active"
