"""MCP clients for the real server: the SDK's own Streamable HTTP client, one session per use.

Sessions are opened inside each test (``async with mcp(key) as session``) rather than by a
fixture, so the SDK's task groups start and stop in the same task.
"""

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from tests.conftest import Server

Connect = Callable[[str], AbstractAsyncContextManager[ClientSession]]


def mcp_url(server: Server) -> str:
    return f"{server.base_url}/api/v1/mcp"


@pytest.fixture
def mcp(server: Server) -> Connect:
    """``async with mcp(api_key) as session``: an initialized MCP session acting as that key."""

    @asynccontextmanager
    async def connect(api_key: str) -> AsyncIterator[ClientSession]:
        headers = {"Authorization": f"Bearer {api_key}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(mcp_url(server), http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session

    return connect


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a successful call."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error(result: CallToolResult) -> dict[str, Any]:
    """The error body of a failed call: ``{"code", "message", "details"?}``."""
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    return json.loads(text)["error"]
