"""The MCP server: Errand's agent-facing operations as tools, over any transport.

:func:`build_server` makes one :class:`ErrandMCP` with every tool of
:data:`errand.api.mcp.tools.TOOLS`; the transport only decides where the caller's identity
comes from (:mod:`errand.api.mcp.auth`). Each tool translates its arguments, calls the same
core service function as the REST route, and translates the answer, so policies,
idempotency, rate limits, organization isolation and audit apply by construction. A
:class:`~errand.kit.errors.DomainError` becomes a tool result with ``isError: true``
(:mod:`errand.api.mcp.errors`).
"""

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import Tool as MCPTool
from pydantic import ValidationError

from errand import __version__
from errand.api.common import issue_details
from errand.api.mcp import errors
from errand.api.mcp.auth import PrincipalSource
from errand.api.mcp.tooldef import Call, CallSource, ToolDef
from errand.api.mcp.tools import TOOLS
from errand.kit import inputs
from errand.kit.core import Core
from errand.kit.errors import InvalidRequest

INSTRUCTIONS = """\
Errand carries out real bookings for the people you act for, as the organization that owns \
your API key, inside that organization's policies and limits, with every action audited.

- Find venues (their exact names and cities) with find_venues: by scenario, city, cuisine, \
neighborhood or part of the name. Venue names ignore case, accents and apostrophe styles; an \
unknown name is NOT_FOUND with details.suggestions.
- Restaurant tables are booked at once: book_reservation, modify_reservation, \
cancel_reservation. Look first with search_availability (any scenario: what is bookable \
near a time).
- Restaurants, hotels, flights and event tickets can also be booked by an execution job \
(create_execution_job): it runs in the background, may adjust the time or switch provider \
within the consent you give, and stops before card entry with a handoffUrl where the end \
user pays. Poll get_execution_job until `terminal` is true.
- Give every tool that changes something an idempotency_key: a fresh unique string (a UUID) \
per intended action. If a call times out or fails with PROVIDER_UNAVAILABLE or \
SERVICE_UNAVAILABLE, call again with the same key and the same arguments: you get the first \
outcome back (replayed: true) and nothing happens twice.
- A failed call is a result with isError true whose text is JSON: \
{"error": {"code", "message", "details"?, "retryAfterSeconds"?, "replayed"?}}. Act on the code: \
INVALID_REQUEST fix the named fields; NOT_FOUND check names and ids; CAPACITY_EXCEEDED offer \
details.nearestAvailableTimes to the user; POLICY_VIOLATION do not retry, tell the user; \
RATE_LIMITED wait retryAfterSeconds; IDEMPOTENCY_CONFLICT use a new key for a different \
request; INVALID_STATE read the current state before acting.
- status requires_approval (bookings) or awaiting_approval (jobs) means a person in the \
organization must approve. Agents cannot see or decide approvals, on purpose: tell the user \
it is waiting for approval and check back later; do not book again.
"""


class ErrandMCP(MCPServer):
    """An MCPServer whose arguments pass Errand's input boundary, whose argument errors read
    like every other Errand error (INVALID_REQUEST), and whose tool schemas stand alone.

    Before the SDK validates them, the arguments get the checks every REST body gets
    (:func:`errand.kit.inputs.check_value`: no control characters, finite numbers, one
    spelling per field, bounded nesting), here rather than in the HTTP app so that stdio
    gives the same verdict. A call to a tool that does not exist is a NOT_FOUND tool result,
    not the SDK's bare text. ``tools/list`` shows the tools' definitions
    (:meth:`errand.api.mcp.tooldef.ToolDef.listing`): every input and output schema with its
    definitions inlined, since several MCP clients cannot resolve ``$ref``."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.tools: dict[str, ToolDef] = {}  # in registration order

    def add_definition(self, tool: ToolDef, call_of: CallSource) -> None:
        """Serve ``tool``, its handler acting for whoever ``call_of`` names."""
        self.add_tool(tool.entry_point(call_of), **tool.register_options())
        self.tools[tool.name] = tool

    async def run_streams(self, read_stream: Any, write_stream: Any) -> None:
        """Serve on the streams of a transport opened by the caller: what ``run_stdio_async`` does
        on the stdio transport it opens itself (:mod:`errand.api.mcp.stdio` opens its own)."""
        lowlevel = self._lowlevel_server
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    async def list_tools(self) -> list[MCPTool]:
        return [tool.listing() for tool in self.tools.values()]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        if name not in self.tools:
            return errors.unknown_tool(name, list(self.tools))
        try:
            inputs.check_value(arguments)
        except InvalidRequest as exc:
            return errors.invalid(name, issue_details(exc.details, "field"))
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError) and not isinstance(exc, UnexpectedToolError):
                return errors.invalid_arguments(name, exc.__cause__)
            raise


def build_server(core: Core, principal_of: PrincipalSource) -> ErrandMCP:
    """The MCP server with every agent-facing tool, acting for whoever ``principal_of`` names."""
    server = ErrandMCP(
        name="errand", title="Errand", version=__version__, instructions=INSTRUCTIONS,
        description="Execution gateway for AI agents: bookings that are authenticated, idempotent, "
                    "policy-guarded, approved and audited.",
        log_level="WARNING",
    )

    async def call_of(ctx: Any) -> Call:
        return Call(core, await principal_of(ctx))

    for tool in TOOLS:
        server.add_definition(tool, call_of)
    return server

