"""Credits: sums over the ledger for this UTC month, per agent and model, the 12-month history,
agent stats, and the allocation set with ``errand set-credits``."""

from datetime import timedelta

import httpx

from errand.automations import service as automations_service
from errand.kit import clock
from tests.api.automations.support import AGENTS, assert_error, create, keyed
from tests.conftest import Org, Server, mint_key
from tests.test_cli import run_cli, server_env

CREDITS = "/api/credits"
HISTORY = "/api/credits/history"


def _previous_month_start() -> tuple[str, str]:
    start = clock.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = start - timedelta(days=1)
    return start.strftime("%Y-%m"), last.strftime("%Y-%m")


async def charge(server: Server, org_id: str, agent_id: str, credits: int, *, model: str | None = "standard",
                 env: str = "live", days_ago: int = 0) -> None:
    at = clock.now() - timedelta(days=days_ago)
    async with server.db.unit_of_work() as session:
        await automations_service.charge_credits(session, organization_id=org_id, env=env, agent_id=agent_id,
                                                 credits=credits, model=model, execution_id="exec_test",
                                                 step_id="classify", at=at)


async def test_a_new_organization_has_the_default_allocation_and_nothing_used(org: Org) -> None:
    usage = (await org.admin.get(CREDITS)).json()
    month, _ = _previous_month_start()
    assert usage["month"] == month and usage["allocation"] == 100_000
    assert usage["total_used"] == 0 and usage["remaining"] == 100_000
    assert usage["by_agent"] == {} and usage["by_model"] == {"quick": 0, "standard": 0, "premium": 0, "expert": 0}
    assert usage["updated_at"] is None and usage["org_id"].startswith("org_")


async def test_credits_stats_and_history_are_sums_of_the_ledger(server: Server, org: Org) -> None:
    org_id = (await org.admin.get(CREDITS)).json()["org_id"]
    agent = await create(org.admin)
    await charge(server, org_id, agent["id"], 20)
    await charge(server, org_id, agent["id"], 100, model="premium")
    await charge(server, org_id, "agent_system_finance_notify", 5, model="quick")
    await charge(server, org_id, agent["id"], 0, model=None)  # a notification step costs nothing
    # Not this month's, not this mode's, not this organization's: none of them count here.
    await charge(server, org_id, agent["id"], 200, model="expert", days_ago=40)
    await charge(server, org_id, agent["id"], 7, env="test")
    async with keyed(server, await mint_key(server, "Other " + org.name)) as other:
        other_id = (await other.get(CREDITS)).json()["org_id"]
    await charge(server, other_id, agent["id"], 999)

    usage = (await org.admin.get(CREDITS)).json()
    assert usage["total_used"] == 125 and usage["remaining"] == 100_000 - 125
    assert usage["by_agent"] == {agent["id"]: 120, "agent_system_finance_notify": 5}
    assert usage["by_model"] == {"quick": 5, "standard": 20, "premium": 100, "expert": 0}
    assert usage["updated_at"] is not None

    stats = (await org.admin.get(f"{AGENTS}/{agent['id']}")).json()["stats"]
    assert stats["credits_used_this_month"] == 120
    listed = {a["id"]: a["stats"] for a in (await org.admin.get(AGENTS)).json()["agents"]}
    assert listed[agent["id"]]["credits_used_this_month"] == 120
    assert listed["agent_system_finance_notify"]["credits_used_this_month"] == 5
    assert listed["agent_system_payment_text"]["credits_used_this_month"] == 0

    history = (await org.admin.get(HISTORY)).json()["history"]
    this_month, last_month = _previous_month_start()
    assert len(history) == 12 and history[0]["month"] == this_month and history[1]["month"] == last_month
    assert history[0] == {"month": this_month, "total_used": 125, "allocation": 100_000}
    assert sum(h["total_used"] for h in history) == 125 + 200
    assert [h["month"] for h in history] == sorted((h["month"] for h in history), reverse=True)

    async with keyed(server, org.test_key) as test_reader:
        assert (await test_reader.get(CREDITS)).json()["total_used"] == 7


async def test_set_credits_changes_the_allocation(server: Server, org: Org) -> None:
    result = await run_cli("set-credits", "--org", org.name, "--allocation", "5000", env=server_env(server))
    assert result.returncode == 0, result.stderr
    assert "100,000 -> 5,000" in result.stderr
    org_id = (await org.admin.get(CREDITS)).json()["org_id"]
    await charge(server, org_id, "agent_x", 6000)
    usage = (await org.admin.get(CREDITS)).json()
    assert usage["allocation"] == 5000 and usage["total_used"] == 6000 and usage["remaining"] == 0
    assert (await org.admin.get(HISTORY)).json()["history"][0]["allocation"] == 5000


async def test_set_credits_refuses_an_unknown_organization_or_a_negative_figure(server: Server) -> None:
    unknown = await run_cli("set-credits", "--org", "No Such Org", "--allocation", "10", env=server_env(server))
    assert unknown.returncode == 1 and "No organization named" in unknown.stderr
    negative = await run_cli("set-credits", "--org", "No Such Org", "--allocation", "-1", env=server_env(server))
    assert negative.returncode == 2


async def test_agent_keys_read_credits_and_no_key_is_unauthorized(server: Server, org: Org,
                                                                   anon: httpx.AsyncClient) -> None:
    async with keyed(server, org.agent_key) as reader:
        assert (await reader.get(CREDITS)).status_code == 200
        assert (await reader.get(HISTORY)).status_code == 200
    assert_error(await anon.get(CREDITS), 401, "unauthorized")
    assert_error(await anon.get(HISTORY), 401, "unauthorized")
