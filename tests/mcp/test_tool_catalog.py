"""The tool catalog: each MCP tool is a definition that reads without a server, and tools/list serves exactly it."""

import json
from typing import Any

import grimp
from mcp.server import MCPServer

from errand.api.mcp.server import build_server
from errand.api.mcp.tooldef import self_contained
from errand.api.mcp.tools import TOOLS


def _wire(tools: list[Any]) -> list[dict[str, Any]]:
    return [tool.model_dump(by_alias=True, exclude_none=True, mode="json") for tool in tools]


def test_every_tool_reads_without_a_server() -> None:
    names = [tool.name for tool in TOOLS]
    assert len(set(names)) == len(names)
    for tool in TOOLS:
        assert tool.title and tool.description, tool.name
        assert tool.annotations.title == tool.title
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        assert "$ref" not in json.dumps(tool.input_schema) + json.dumps(tool.output_schema), tool.name
        assert "ctx" not in tool.input_schema["properties"] and "call" not in tool.input_schema["properties"]


async def test_tools_list_is_the_catalog_as_the_sdk_reads_the_registered_tools() -> None:
    server = build_server(None, None)  # type: ignore[arg-type]  # listing runs no tool
    catalog = [tool.listing() for tool in TOOLS]
    # What the SDK itself derived from the registered entry points (what validates each call).
    from_sdk = [tool.model_copy(update={
        "input_schema": self_contained(tool.input_schema),
        "output_schema": self_contained(tool.output_schema) if tool.output_schema is not None else None,
    }) for tool in await MCPServer.list_tools(server)]
    assert _wire(await server.list_tools()) == _wire(catalog) == _wire(from_sdk)


def test_tool_definitions_do_not_import_the_server() -> None:
    graph = grimp.build_graph("errand")
    for module in ("errand.api.mcp.tools", "errand.api.mcp.tooldef", "errand.api.mcp.schemas"):
        assert not graph.chain_exists(importer=module, imported="errand.api.mcp.server", as_packages=True), module
