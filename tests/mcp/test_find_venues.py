"""find_venues: the same venues as GET /api/v1/venues, for the same filters and the same key."""

from typing import Any

import httpx

from tests.conftest import Org, Server, mint_key
from tests.mcp.conftest import Connect, error, ok


async def rest(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/venues", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_find_venues_answers_as_rest_page_by_page(mcp: Connect, org: Org) -> None:
    filters = {"scenario": "restaurant", "city": "New York", "limit": 4}
    async with mcp(org.agent_key) as session:
        first = ok(await session.call_tool("find_venues", filters))
        second = ok(await session.call_tool("find_venues", {**filters, "cursor": first["nextCursor"]}))
    assert first == await rest(org.agent, **filters)
    assert second == await rest(org.agent, **filters, cursor=first["nextCursor"])
    assert first["count"] == 4 and first["nextCursor"]
    assert not {v["name"] for v in first["venues"]} & {v["name"] for v in second["venues"]}


async def test_name_search_and_filters_match_rest(mcp: Connect, org: Org) -> None:
    for filters in ({"q": "l’arpège"}, {"scenario": "hotel", "city": "london"},
                    {"scenario": "activity", "q": "louvre"}, {"cuisine": "italian", "limit": 100}):
        async with mcp(org.agent_key) as session:
            found = ok(await session.call_tool("find_venues", filters))
        assert found == await rest(org.agent, **filters), filters
        assert found["venues"], filters


async def test_the_tool_is_read_only(mcp: Connect, org: Org) -> None:
    async with mcp(org.agent_key) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    annotations = tools["find_venues"].annotations
    assert annotations is not None and annotations.read_only_hint and not annotations.destructive_hint


async def test_a_scenario_outside_the_key_is_a_policy_violation(mcp: Connect, server: Server, org: Org) -> None:
    hotels_only = await mint_key(server, org.name, scenarios=["hotel"])
    async with mcp(hotels_only) as session:
        refused = error(await session.call_tool("find_venues", {"scenario": "restaurant"}))
        listed = ok(await session.call_tool("find_venues", {"limit": 100}))
    assert refused["code"] == "POLICY_VIOLATION"
    assert listed["venues"] and {v["scenario"] for v in listed["venues"]} == {"hotel"}


async def test_hostile_arguments_are_invalid_requests(mcp: Connect, org: Org) -> None:
    async with mcp(org.agent_key) as session:
        long_q = error(await session.call_tool("find_venues", {"q": "x" * 10_000}))
        unknown = error(await session.call_tool("find_venues", {"scenario": "spaceship"}))
        bad_cursor = error(await session.call_tool("find_venues", {"cursor": "not-a-cursor"}))
        nul = error(await session.call_tool("find_venues", {"q": "a\u0000b"}))
    for failure, field in ((long_q, "q"), (unknown, "scenario"), (bad_cursor, "cursor"), (nul, "q")):
        assert failure["code"] == "INVALID_REQUEST", failure
        # Argument errors name a `field`; the service's own (the cursor) a `path`, as for the job tools.
        assert field in {d.get("field", d.get("path")) for d in failure["details"]}, failure
