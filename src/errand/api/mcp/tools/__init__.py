"""Every MCP tool Errand serves, as definitions (:class:`errand.api.mcp.tooldef.ToolDef`).

One module per domain, each listing its tools in ``TOOLS``; :data:`TOOLS` is all of them in
the order ``tools/list`` shows them. There is deliberately no approval tool: approvals are how
the organization's people keep the last word over what agents do, so agents may not list or
decide them.
"""

from errand.api.mcp.tooldef import ToolDef
from errand.api.mcp.tools import jobs, reservations, search, venues

TOOLS: tuple[ToolDef, ...] = (*search.TOOLS, *venues.TOOLS, *reservations.TOOLS, *jobs.TOOLS)
