"""Who is calling a tool.

The tools never read credentials themselves; they ask a :data:`PrincipalSource`:

- over HTTP, :class:`errand.api.mcp.app.McpApp` authenticated the request's
  ``Authorization: Bearer`` key before the SDK saw it (and applied the key's daily
  limit) and left the principal in the request's state, where :func:`from_request`
  finds it through the tool's Context;
- over stdio there is no request: :func:`from_api_key` authenticates the configured key
  again on every call, so a revoked key stops working at once and every call counts
  against the key's daily limit, as every HTTP request does.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from errand.api.common import principal_for
from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit.core import Core

STATE_KEY = "errand_principal"

PrincipalSource = Callable[[Any], Awaitable[Principal]]


async def from_request(ctx: Any) -> Principal:
    """The principal :class:`~errand.api.mcp.app.McpApp` stored for this HTTP request."""
    request = ctx.request_context.request
    state = request.scope.get("state") if request is not None else None
    principal = state.get(STATE_KEY) if isinstance(state, dict) else None
    if not isinstance(principal, Principal):
        # Unreachable behind McpApp; refuses rather than acts if the server is mounted without it.
        raise identity_service.MissingAuthorization("The Authorization header is missing.")
    return principal


def from_api_key(core: Core, api_key: str) -> PrincipalSource:
    async def principal(_ctx: Any) -> Principal:
        return await principal_for(core, f"Bearer {api_key}")

    return principal
