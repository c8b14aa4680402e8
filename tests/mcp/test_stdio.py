"""``errand mcp``: the same tools over stdio, spawned by the SDK's stdio client as a desktop client would.

The process builds its own core on the test server's database (as ``errand`` commands do)
and reaches the sandbox marketplace of the test server over HTTP.
"""

import asyncio
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.conftest import SECRET_KEY, Org, Server
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
