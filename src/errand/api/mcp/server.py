"""The MCP server: Errand's agent-facing operations as tools, over any transport.

:func:`build_server` makes one :class:`ErrandMCP` with every tool; the transport only
decides where the caller's identity comes from (:mod:`errand.api.mcp.auth`). Each tool
translates its arguments, calls the same core service function as the REST route, and
translates the answer, so policies, idempotency, rate limits, organization isolation and
audit apply by construction. A :class:`~errand.kit.errors.DomainError` becomes a tool
result with ``isError: true`` (:mod:`errand.api.mcp.errors`).

There is deliberately no approval tool: approvals are how the organization's people keep
the last word over what agents do, so agents may not list or decide them.
"""

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.shared.exceptions import MCPError
from mcp_types import Tool as MCPTool
from mcp_types import ToolAnnotations
from pydantic import ValidationError

from errand import __version__
from errand.api.common import issue_details
from errand.api.mcp import errors, jobs, reservations, search, venues
from errand.api.mcp.auth import PrincipalSource
from errand.kit.core import Core
from errand.kit import inputs
from errand.kit.errors import DomainError, InvalidRequest
from errand.kit.logging import get_logger

_log = get_logger("errand.api.mcp")

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
    not the SDK's bare text. ``tools/list`` shows every input and output schema with its
    definitions inlined (:func:`self_contained`), since several MCP clients cannot resolve
    ``$ref``."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.tool_names: list[str] = []  # in registration order

    def add_tool(self, fn: Callable[..., Any], name: str | None = None, **options: Any) -> None:
        super().add_tool(fn, name=name, **options)
        self.tool_names.append(name or fn.__name__)

    async def run_streams(self, read_stream: Any, write_stream: Any) -> None:
        """Serve on the streams of a transport opened by the caller: what ``run_stdio_async`` does
        on the stdio transport it opens itself (:mod:`errand.api.mcp.stdio` opens its own)."""
        lowlevel = self._lowlevel_server
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    async def list_tools(self) -> list[MCPTool]:
        return [tool.model_copy(update={
            "input_schema": self_contained(tool.input_schema),
            "output_schema": self_contained(tool.output_schema) if tool.output_schema is not None else None,
        }) for tool in await super().list_tools()]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        if name not in self.tool_names:
            return errors.unknown_tool(name, self.tool_names)
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


def self_contained(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each ``$ref`` to one of its ``$defs`` replaced by that definition, and no
    ``$defs`` left: what clients that cannot follow references can read.

    Keywords beside a ``$ref`` (pydantic puts a field's ``description`` there) win over the
    definition's. Raises ValueError for a definition that refers to itself, which cannot be
    inlined; no tool takes or returns such a model. Pydantic has no option that inlines its
    definitions, and a reference resolver (jsonref) would add a dependency for these lines."""
    definitions = schema.get("$defs", {})

    def inline(node: Any, open_refs: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [inline(item, open_refs) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in open_refs:
                raise ValueError(f"the schema definition {name!r} refers to itself and cannot be inlined")
            siblings = {key: inline(value, open_refs) for key, value in node.items() if key != "$ref"}
            return {**inline(definitions[name], open_refs | {name}), **siblings}
        return {key: inline(value, open_refs) for key, value in node.items() if key != "$defs"}

    return inline(schema, frozenset())


ToolFn = Callable[..., Awaitable[Any]]


class Registrar:
    """Adds tools to a server: each with its docstring as description, its annotations, and
    DomainErrors turned into ``isError`` results. Tool modules call it with the core and the
    principal source they need."""

    def __init__(self, server: ErrandMCP, core: Core, principal_of: PrincipalSource) -> None:
        self.server = server
        self.core = core
        self.principal_of = principal_of

    def __call__(self, *, name: str, title: str, read_only: bool, destructive: bool, idempotent: bool,
                 open_world: bool) -> Callable[[ToolFn], ToolFn]:
        def register(fn: ToolFn) -> ToolFn:
            @functools.wraps(fn)
            async def call(**kwargs: Any) -> Any:
                try:
                    return await fn(**kwargs)
                except DomainError as exc:
                    return errors.tool_error(exc)
                except MCPError:
                    raise  # a protocol error, answered as a JSON-RPC error
                except Exception:
                    _log.exception("mcp_tool_failed", tool=name)
                    return errors.unexpected()

            annotations = ToolAnnotations(
                title=title, read_only_hint=read_only, destructive_hint=destructive,
                idempotent_hint=idempotent, open_world_hint=open_world,
            )
            self.server.add_tool(call, name=name, title=title, description=inspect.cleandoc(fn.__doc__ or ""),
                                 annotations=annotations)
            return fn

        return register


def build_server(core: Core, principal_of: PrincipalSource) -> ErrandMCP:
    """The MCP server with every agent-facing tool, acting for whoever ``principal_of`` names."""
    server = ErrandMCP(
        name="errand", title="Errand", version=__version__, instructions=INSTRUCTIONS,
        description="Execution gateway for AI agents: bookings that are authenticated, idempotent, "
                    "policy-guarded, approved and audited.",
        log_level="WARNING",
    )
    tool = Registrar(server, core, principal_of)
    search.register(tool)
    venues.register(tool)
    reservations.register(tool)
    jobs.register(tool)
    return server

