"""The MCP dialect: Errand's agent-facing operations as MCP tools, over Streamable HTTP and stdio."""
