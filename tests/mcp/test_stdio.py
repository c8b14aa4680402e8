"""``errand mcp``: the same tools over stdio, spawned by the SDK's stdio client as a desktop client would.

The process builds its own core on the test server's database (as ``errand`` commands do)
and reaches the sandbox marketplace of the test server over HTTP.
"""

import asyncio
import json
import os
import subprocess
import sys
import threading
from datetime import date
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.conftest import SECRET_KEY, Org, Server, free_port
from tests.mcp.conftest import error, ok

ERRAND = str(Path(sys.executable).parent / "errand")


def stdio_env(server: Server, api_key: str | None) -> dict[str, str]:
    env = {
        "ERRAND_DATABASE_URL": server.settings.effective_database_url, "ERRAND_SECRET_KEY": SECRET_KEY,
        "ERRAND_DATA_DIR": str(server.settings.data_dir), "ERRAND_SANDBOX_URL": f"{server.base_url}/sandbox",
        "ERRAND_LOG_LEVEL": "WARNING",
    }
    if api_key is not None:
        env["ERRAND_API_KEY"] = api_key
    return env


async def test_stdio_server_lists_the_tools_and_books_what_rest_then_cancels(
    server: Server, org: Org, day: date
) -> None:
    params = StdioServerParameters(command=ERRAND, args=["mcp"], env=stdio_env(server, org.agent_key))
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            tools = {t.name for t in (await session.list_tools()).tools}
            booked = ok(await session.call_tool("book_reservation", {
                "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": 2,
                "datetime": f"{day.isoformat()}T18:00:00", "customer": {"name": "Desk Top"},
                "idempotency_key": "stdio-1",
            }))
            missing = error(await session.call_tool("cancel_reservation", {"transaction_id": "txn_nope"}))
    assert init.server_info.name == "errand"
    assert "book_reservation" in tools and "create_execution_job" in tools
    assert booked["status"] == "confirmed"
    assert missing["code"] == "NOT_FOUND"
    response = await org.agent.post("/api/v1/agent/restaurant/cancel",
                                    json={"transaction_id": booked["transactionId"]})
    assert response.status_code == 200, response.text
    replay = await org.agent.post("/api/v1/agent/restaurant/book", headers={"Idempotency-Key": "stdio-1"}, json={
        "restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": 2,
        "datetime": f"{day.isoformat()}T18:00:00", "customer": {"name": "Desk Top"}})
    assert replay.json()["transactionId"] == booked["transactionId"]


async def run_mcp(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """In a thread: the server under test shares this event loop and must keep serving."""
    full = {k: v for k, v in os.environ.items() if k != "ERRAND_API_KEY"} | env
    return await asyncio.to_thread(subprocess.run, [ERRAND, "mcp"], env=full, capture_output=True, text=True,
                                   input="", timeout=60)


async def test_refuses_to_start_without_a_key(server: Server) -> None:
    result = await run_mcp(stdio_env(server, None))
    assert result.returncode == 1
    assert "ERRAND_API_KEY is not set" in result.stderr
    assert result.stdout == ""


async def test_refuses_to_start_with_a_key_that_does_not_authenticate(server: Server) -> None:
    result = await run_mcp(stdio_env(server, "ar_live_" + "y" * 40))
    assert result.returncode == 1
    assert "ERRAND_API_KEY was refused" in result.stderr
    assert result.stdout == ""


INITIALIZE = {"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def nested(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


def call(request_id: int, name: str, arguments_json: str) -> bytes:
    return (f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call",'
            f'"params":{{"name":"{name}","arguments":{arguments_json}}}}}').encode()


def exchange(env: dict[str, str], lines: list[bytes], answers: int) -> list[dict]:
    """Start ``errand mcp``, initialize, send ``lines`` (raw bytes, one message each), and read
    ``answers`` answers besides initialize's before closing stdin. Blocking: run it in a thread."""
    full = {k: v for k, v in os.environ.items() if k != "ERRAND_API_KEY"} | env
    proc = subprocess.Popen([ERRAND, "mcp"], env=full, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin is not None and proc.stdout is not None
    # A line left unanswered would block the read below for ever: stop the process instead,
    # which ends the read with "stopped answering".
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        proc.stdin.write(json.dumps(INITIALIZE).encode() + b"\n" + json.dumps(INITIALIZED).encode() + b"\n")
        proc.stdin.write(b"".join(line + b"\n" for line in lines))
        proc.stdin.flush()
        received = []
        while len(received) < answers + 1:
            line = proc.stdout.readline()
            assert line, f"errand mcp stopped answering after {received}"
            received.append(json.loads(line))
        return [r for r in received if r.get("id") != "init"]
    finally:
        watchdog.cancel()
        proc.stdin.close()
        proc.wait(timeout=30)


async def test_every_malformed_line_is_answered_with_a_json_rpc_error(server: Server, org: Org) -> None:
    malformed = [
        (b'{"jsonrpc":"2.0","id":1,"method":"tools/li', -32700),                # truncated JSON
        (b'[{"jsonrpc":"2.0","id":2,"method":"tools/list"}]', -32600),          # a batch
        (b"[]", -32600),                                                         # an empty batch
        (b"42", -32600), (b'"tools/list"', -32600), (b"null", -32600),          # not an object
        (b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search_availability",'
         b'"arguments":{"q":' + nested(60).encode() + b"}}}", -32700),             # nested past any limit
        (b'{"a":1,"a":2}', -32600),                                              # a duplicate key
        (b'\xff\xfe{"jsonrpc":"2.0"}', -32700),                                  # not UTF-8
        *((b'{"jsonrpc":"2.0","id":' + i + b',"method":"tools/list"}', -32600)  # an id MCP does not allow
          for i in (b"1.5", b'{"x":1}', b"true", b"null")),
        (b'{"jsonrpc":"2.0","id":"a\\u0000b","method":"tools/list"}', -32600),     # NUL in the envelope
    ]
    lines = [line for line, _ in malformed] + [
        b"",                                                                     # blank: no message, no answer
        b'{"jsonrpc":"2.0","id":7,"method":5}',                                  # not JSON-RPC, id readable
        call(8, "search_availability", '{"q":' + nested(36) + "}"),              # deep arguments, within the line's
    ]
    answers = await asyncio.to_thread(exchange, stdio_env(server, org.agent_key), lines, len(malformed) + 2)

    anonymous = [a for a in answers if a["id"] is None]
    assert sorted(a["error"]["code"] for a in anonymous) == sorted(code for _, code in malformed)
    assert all(a["jsonrpc"] == "2.0" and a["error"]["data"]["code"] == "INVALID_REQUEST" for a in anonymous)
    by_id = {a["id"]: a for a in answers if a["id"] is not None}
    assert by_id[7]["error"]["code"] == -32600
    deep = json.loads(by_id[8]["result"]["content"][0]["text"])["error"]
    assert by_id[8]["result"]["isError"] is True
    assert deep["code"] == "INVALID_REQUEST" and "nested more than 32 levels" in deep["message"]


async def test_unknown_tool_is_an_error_result_in_the_documented_body(server: Server, org: Org) -> None:
    [answer] = await asyncio.to_thread(exchange, stdio_env(server, org.agent_key),
                                       [call(1, "book_a_spaceship", "{}")], 1)
    assert answer["id"] == 1 and answer["result"]["isError"] is True
    body = json.loads(answer["result"]["content"][0]["text"])
    assert body["error"]["code"] == "NOT_FOUND"
    assert "book_a_spaceship" in body["error"]["message"] and "book_reservation" in body["error"]["message"]


async def test_a_sandbox_it_cannot_reach_is_named_by_its_url(server: Server, org: Org, day: date) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/sandbox"
    env = stdio_env(server, org.agent_key) | {"ERRAND_SANDBOX_URL": nowhere}
    arguments = json.dumps({"restaurantName": "Golden Gate Grill", "city": "San Francisco", "partySize": 2,
                            "datetime": f"{day.isoformat()}T18:00:00", "customer": {"name": "Desk Top"}})
    [answer] = await asyncio.to_thread(exchange, env, [call(1, "book_reservation", arguments)], 1)
    body = json.loads(answer["result"]["content"][0]["text"])
    assert answer["result"]["isError"] is True
    assert body["error"]["code"] == "PROVIDER_UNAVAILABLE"
    assert nowhere in body["error"]["message"] and "ERRAND_SANDBOX_URL" in body["error"]["message"]
