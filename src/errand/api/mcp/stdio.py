"""The MCP server over stdin/stdout, for desktop MCP clients that start ``errand mcp`` themselves.

The process acts for one API key (``ERRAND_API_KEY``), checked before the server starts
and again on every tool call, so a revoked key stops working at once and each call counts
against the key's daily limit, as each HTTP request does. stdout carries the protocol, so
every log line goes to stderr.

This process runs no job runner: a job created here is picked up, like any job committed
by an API process without a runner, by the runner of ``errand serve`` (or ``errand
worker``) on the same database.
"""

import sys

import structlog

from errand.api.common import principal_for
from errand.api.mcp import auth
from errand.api.mcp.server import build_server
from errand.kit.core import Core
from errand.kit.errors import Unauthorized


async def serve_stdio(core: Core, api_key: str | None) -> None:
    """Serve until stdin closes. Raises Unauthorized (or Unavailable) before serving when the key
    is missing or does not authenticate, so the command can refuse to start with the reason."""
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    if not api_key or not api_key.strip():
        raise Unauthorized("missing_api_key", "ERRAND_API_KEY is not set; export the API key the MCP tools "
                                              "should act as (errand create-api-key mints one).")
    key = api_key.strip()
    await principal_for(core, f"Bearer {key}")
    server = build_server(core, auth.from_api_key(core, key))
    await server.run_stdio_async()
