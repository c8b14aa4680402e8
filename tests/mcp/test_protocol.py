"""The MCP endpoint itself: handshake, tool list, authentication at the HTTP level, raw JSON-RPC."""

import json
import uuid
from datetime import date

import httpx
import pytest

from tests.conftest import Org, Server, mint_key
from tests.mcp.conftest import Connect, mcp_url

TOOLS = {
    "book_reservation", "cancel_reservation", "modify_reservation", "search_availability", "find_venues",
    "create_execution_job", "get_execution_job", "get_execution_job_audit", "cancel_execution_job",
}
CHANGING = {"book_reservation", "cancel_reservation", "modify_reservation", "create_execution_job",
            "cancel_execution_job"}

# The contract's "MCP tool call (book via MCP)" curl example, byte for byte as its -d body.
CONTRACT_CURL_BODY = """{
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
      "name": "book_reservation",
      "arguments": {
        "provider": "mock",
        "service_type": "consultation",
        "customer": {
          "name": "Jane Doe",
          "email": "jane@example.com"
        },
        "time_slot": {
          "start": "2026-03-20T10:00:00Z",
          "end": "2026-03-20T11:00:00Z"
        }
      }
    }
  }"""


async def test_initialize_names_errand_and_says_approvals_are_for_humans(mcp: Connect, org: Org) -> None:
    async with mcp(org.agent_key) as session:
        init = await session.initialize()
    assert init.server_info.name == "errand"
    assert init.capabilities.tools is not None
    assert init.instructions and "approv" in init.instructions
    assert "idempotency_key" in init.instructions


async def test_tools_are_listed_with_schemas_annotations_and_no_approval_tool(mcp: Connect, org: Org) -> None:
    async with mcp(org.agent_key) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    assert not [name for name in tools if "approv" in name]
    for name, tool in tools.items():
        assert tool.description and len(tool.description) > 200, name
        assert tool.input_schema["type"] == "object", name
        assert tool.output_schema and tool.output_schema["type"] == "object", name
        hints = tool.annotations
        assert hints is not None, name
        assert None not in (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint,
                            hints.open_world_hint), name
        assert hints.read_only_hint == (name not in CHANGING), name
        assert ("idempotency_key" in tool.input_schema["properties"]) == (name in CHANGING), name
    assert tools["cancel_reservation"].annotations.destructive_hint is True
    assert tools["book_reservation"].annotations.idempotent_hint is False
    assert "CAPACITY_EXCEEDED" in tools["book_reservation"].description
    assert set(tools["book_reservation"].input_schema["properties"]) >= {
        "restaurant_name", "city", "party_size", "datetime", "customer", "provider", "service_type", "time_slot",
    }
    assert "transactionId" in tools["book_reservation"].output_schema["properties"]


async def test_missing_key_is_401_before_any_tool_runs(server: Server) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(mcp_url(server), content=CONTRACT_CURL_BODY,
                                     headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "UNAUTHORIZED", "message": "The Authorization header is missing."}}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_bad_or_malformed_key_is_401(server: Server) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for key in ("ar_live_" + "x" * 40, "not-a-key"):
            response = await client.post(
                mcp_url(server), content=CONTRACT_CURL_BODY,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
            )
            assert response.status_code == 401, key
            assert response.json()["error"]["code"] == "UNAUTHORIZED"


async def test_the_contracts_raw_curl_example_gets_a_tool_result_explaining_the_mapping(
    server: Server, org: Org
) -> None:
    # Sent as the contract writes it: no initialize, no session, the bare path, no Accept header
    # beyond curl's */*. The generic shape is understood; this instance does not name a
    # restaurant Errand can book (a "consultation" at "mock", no city, a date already past),
    # so the answer is a tool error that says how the generic shape maps.
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            mcp_url(server), content=CONTRACT_CURL_BODY,
            headers={"Authorization": f"Bearer {org.agent_key}", "Content-Type": "application/json",
                     "Accept": "*/*"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["jsonrpc"] == "2.0" and body["id"] == 1
    result = body["result"]
    assert result["isError"] is True
    error = json.loads(result["content"][0]["text"])["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert "provider is the restaurant's name" in error["message"]
    assert {d["field"] for d in error["details"]} == {"city", "service_type"}


async def test_raw_tool_call_in_the_generic_shape_books_a_table(server: Server, org: Org, day: date) -> None:
    arguments = {
        "provider": "Golden Gate Grill", "city": "San Francisco", "service_type": "table",
        "customer": {"name": "Jane Doe", "email": "jane@example.com"},
        "time_slot": {"start": f"{day}T10:00:00", "end": f"{day}T11:00:00"},
    }
    payload = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
               "params": {"name": "book_reservation", "arguments": arguments}}
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"{mcp_url(server)}/", json=payload,
                                     headers={"Authorization": f"Bearer {org.agent_key}"})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result.get("isError") is not True, result
    booked = result["structuredContent"]
    assert booked["status"] == "confirmed"
    assert booked["reservation"]["restaurantName"] == "Golden Gate Grill"
    assert booked["reservation"]["partySize"] == 1
    assert booked["reservation"]["localDatetime"].endswith("T10:00")
    assert json.loads(result["content"][0]["text"])["transactionId"] == booked["transactionId"]


async def test_raw_tools_list_without_initialize(server: Server, org: Org) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(mcp_url(server), json={"jsonrpc": "2.0", "id": "a", "method": "tools/list"},
                                     headers={"Authorization": f"Bearer {org.agent_key}"})
    assert response.status_code == 200, response.text
    assert {t["name"] for t in response.json()["result"]["tools"]} == TOOLS


async def test_unknown_method_is_a_json_rpc_error(server: Server, org: Org) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(mcp_url(server), json={"jsonrpc": "2.0", "id": 3, "method": "approvals/list"},
                                     headers={"Authorization": f"Bearer {org.agent_key}"})
    body = response.json()
    assert "result" not in body
    assert body["error"]["code"] == -32601


@pytest.mark.parametrize("body", [
    b'{"jsonrpc":"2.0","id":1.5,"method":"tools/list"}',          # the SDK answered 202 and dropped it
    b'{"jsonrpc":"2.0","id":{"x":1},"method":"tools/list"}',
    b'{"jsonrpc":"2.0","id":true,"method":"tools/list"}',
    b'[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]',          # a batch: pydantic's text before
    b'{"jsonrpc":"1.0","id":1,"method":"tools/list"}',
    b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}',
    b'{"jsonrpc":"2.0","id":"a\\u0000b","method":"tools/list"}',   # NUL in the envelope
    b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"progressToken":1e999}}}',
])
async def test_a_body_that_is_not_one_mcp_message_is_an_invalid_request_in_errands_words(
    server: Server, org: Org, body: bytes
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(mcp_url(server), content=body, headers={
            "Authorization": f"Bearer {org.agent_key}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == -32600 and error["data"]["code"] == "INVALID_REQUEST"
    assert "pydantic" not in response.text and "\\u0000" not in response.text


async def test_other_paths_under_the_prefix_are_404(server: Server, org: Org) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"{mcp_url(server)}/tools", json={},
                                     headers={"Authorization": f"Bearer {org.agent_key}"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_the_keys_daily_limit_counts_mcp_requests(server: Server) -> None:
    key = await mint_key(server, f"Limited {uuid.uuid4().hex[:8]}", rate_limit_per_day=1)
    payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:
        first = await client.post(mcp_url(server), json=payload)
        second = await client.post(mcp_url(server), json=payload)
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "RATE_LIMITED"
    assert int(second.headers["Retry-After"]) > 0


async def test_methods_other_than_post_are_405_with_allow_at_once(server: Server, org: Org) -> None:
    # A short timeout: the failure this guards against is a GET held open as an event stream.
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {org.agent_key}"}, timeout=10) as client:
        for method in ("GET", "DELETE", "PUT"):
            for url in (mcp_url(server), mcp_url(server) + "/"):
                response = await client.request(method, url, headers={"Accept": "text/event-stream"})
                assert response.status_code == 405, (method, url, response.text)
                assert response.headers["Allow"] == "POST"
                assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_tool_schemas_are_self_contained(mcp: Connect, org: Org) -> None:
    async with mcp(org.agent_key) as session:
        tools = (await session.list_tools()).tools
    assert {t.name for t in tools} >= TOOLS
    for tool in tools:
        schemas = json.dumps([tool.input_schema, tool.output_schema])
        assert "$ref" not in schemas and "$defs" not in schemas, tool.name
    book = next(t for t in tools if t.name == "book_reservation")
    # The inlined definitions keep their content: the customer's fields are right there.
    assert "name" in json.dumps(book.input_schema["properties"]["customer"])


async def test_unknown_tool_is_not_found_in_the_documented_body(mcp: Connect, org: Org) -> None:
    async with mcp(org.agent_key) as session:
        result = await session.call_tool("book_a_spaceship", {"destination": "Mars"})
    assert result.is_error
    failure = json.loads(result.content[0].text)["error"]  # type: ignore[union-attr]
    assert failure["code"] == "NOT_FOUND"
    assert "book_a_spaceship" in failure["message"]
