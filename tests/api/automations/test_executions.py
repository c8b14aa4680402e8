"""Executions through the automations dialect, as a client lists, reads, cancels and retries them.

The runs themselves come from events ingested over HTTP and carried out by the server's runner;
these tests read them only through the API.
"""

import pytest

from tests.api.automations.support import assert_error, keyed
from tests.conftest import Org, Server

EXECUTIONS = "/api/executions"


async def test_a_new_organization_has_no_executions(org: Org) -> None:
    listed = await org.admin.get(EXECUTIONS)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"executions": [], "total": 0, "next_cursor": None}


@pytest.mark.parametrize("params, field", [
    ({"status": "sleeping"}, "status"), ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
    ({"limit": "ten"}, "limit"), ({"from": "yesterday"}, "from"), ({"from": "2026-03-01T00:00:00"}, "from"),
    ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "from"), ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
    ({"cursor": "%%%"}, "cursor"), ({"agent_id": "a" * 61}, "agent_id"),
])
async def test_bad_list_parameters_are_400_naming_the_parameter(org: Org, params: dict[str, str], field: str) -> None:
    body = assert_error(await org.admin.get(EXECUTIONS, params=params), 400, "invalid_request")
    assert field in str(body.get("details")) or field in body["message"], body


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/executions/exec_missing"), ("POST", "/api/executions/exec_missing/cancel"),
    ("POST", "/api/executions/exec_missing/retry"),
])
async def test_unknown_executions_are_404(org: Org, method: str, path: str) -> None:
    assert_error(await org.admin.request(method, path), 404, "execution_not_found")


async def test_executions_need_a_key(server: Server) -> None:
    async with keyed(server, "") as anon:
        assert_error(await anon.get(EXECUTIONS), 401, "unauthorized")


async def test_an_agent_key_may_read_but_not_cancel_or_retry(server: Server, org: Org) -> None:
    async with keyed(server, org.agent_key) as agent:
        assert (await agent.get(EXECUTIONS)).status_code == 200
        assert_error(await agent.post(f"{EXECUTIONS}/exec_missing/cancel"), 403, "forbidden")
        assert_error(await agent.post(f"{EXECUTIONS}/exec_missing/retry"), 403, "forbidden")
