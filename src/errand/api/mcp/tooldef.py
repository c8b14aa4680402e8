"""What one MCP tool is, as plain data: :class:`ToolDef`.

A tool is a module-level async **handler** plus its metadata. The handler's first parameter
is the :class:`Call` (the core it runs on and the principal it acts for); its other
parameters are the tool's arguments, annotated as the SDK reads them (types, ``Field``
descriptions, aliases); its docstring is the tool's description and its return annotation
the output model. Each tool module lists its definitions in ``TOOLS``,
:mod:`errand.api.mcp.tools` gathers them, and :func:`errand.api.mcp.server.build_server`
registers them all. Reading a definition needs no server: :attr:`ToolDef.input_schema`,
:attr:`ToolDef.output_schema` and :meth:`ToolDef.listing` are what ``tools/list`` shows,
for any other catalog of Errand's tools (AgentHub's) to read.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools.base import Tool
from mcp.shared.exceptions import MCPError
from mcp_types import Tool as MCPTool
from mcp_types import ToolAnnotations
from pydantic import BaseModel

from errand.api.mcp import errors
from errand.identity.schemas import Principal
from errand.kit.core import Core
from errand.kit.errors import DomainError
from errand.kit.logging import get_logger

_log = get_logger("errand.api.mcp")


@dataclass(frozen=True)
class Call:
    """One tool call: the core it runs on and the principal it acts for."""

    core: Core
    principal: Principal


Handler = Callable[..., Awaitable[Any]]
# Who calls, from the SDK's Context of the call: the transport decides (errand.api.mcp.auth).
CallSource = Callable[[Any], Awaitable[Call]]


@dataclass(frozen=True)
class ToolDef:
    """One tool: its name, title, behaviour hints (MCP's annotations) and handler.

    The description, the input schema and the output schema are read from the handler
    (docstring, parameters, return annotation) the way the SDK reads them, so what a catalog
    shows is what the server serves."""

    name: str
    title: str
    handler: Handler
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.handler.__doc__ or "")

    @property
    def annotations(self) -> ToolAnnotations:
        return ToolAnnotations(
            title=self.title, read_only_hint=self.read_only, destructive_hint=self.destructive,
            idempotent_hint=self.idempotent, open_world_hint=self.open_world,
        )

    @property
    def input_model(self) -> type[BaseModel]:
        """The model the SDK validates the arguments with."""
        return self._sdk_tool.fn_metadata.arg_model

    @property
    def output_model(self) -> Any:
        """The model a successful result is checked against (``None`` if unstructured)."""
        return self._sdk_tool.fn_metadata.output_model

    @property
    def input_schema(self) -> dict[str, Any]:
        """The arguments' JSON Schema, definitions inlined (:func:`self_contained`)."""
        return self_contained(self._sdk_tool.parameters)

    @property
    def output_schema(self) -> dict[str, Any] | None:
        schema = self._sdk_tool.output_schema
        return self_contained(schema) if schema is not None else None

    def listing(self) -> MCPTool:
        """The tool as ``tools/list`` shows it."""
        return MCPTool(name=self.name, title=self.title, description=self.description,
                       input_schema=self.input_schema, output_schema=self.output_schema,
                       annotations=self.annotations)

    def register_options(self) -> dict[str, Any]:
        """The keywords of ``MCPServer.add_tool`` besides the function."""
        return {"name": self.name, "title": self.title, "description": self.description,
                "annotations": self.annotations}

    @cached_property
    def _sdk_tool(self) -> Tool:
        """The SDK's reading of the handler (no server: the entry point is never called)."""
        return Tool.from_function(self.entry_point(_never_called), **self.register_options())

    def entry_point(self, call_of: CallSource) -> Callable[..., Awaitable[Any]]:
        """The function the SDK registers: it takes the SDK's Context and the arguments, asks
        ``call_of`` who calls, runs the handler, and turns a DomainError into an ``isError``
        result (:func:`errand.api.mcp.errors.tool_error`) and any other failure but a protocol
        error (MCPError) into INTERNAL_ERROR. Its signature is the handler's, with the
        Context in place of the :class:`Call`, so the SDK derives the same schemas."""
        handler, name = self.handler, self.name

        async def entry(ctx: Context, **arguments: Any) -> Any:
            try:
                return await handler(await call_of(ctx), **arguments)
            except DomainError as exc:
                return errors.tool_error(exc)
            except MCPError:
                raise  # a protocol error, answered as a JSON-RPC error
            except Exception:
                _log.exception("mcp_tool_failed", tool=name)
                return errors.unexpected()

        signature = inspect.signature(handler)
        call_param, *params = signature.parameters.values()
        context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Context)
        entry.__signature__ = signature.replace(parameters=[context, *params])  # type: ignore[attr-defined]
        entry.__annotations__ = {"ctx": Context, **{key: value for key, value in handler.__annotations__.items()
                                                   if key != call_param.name}}
        for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
            setattr(entry, attribute, getattr(handler, attribute))
        return entry


async def _never_called(_ctx: Any) -> Call:
    raise AssertionError("a ToolDef's own reading of its handler is never called")


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
