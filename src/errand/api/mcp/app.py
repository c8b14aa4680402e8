"""The MCP server over Streamable HTTP at ``/api/v1/mcp``, behind the API key check.

Stateless JSON mode: every POST is answered on its own, without a session, so a plain
``tools/call`` works without ``initialize`` (the contract's curl example) and any number
of API processes can serve one client. :class:`McpApp` is the ASGI app the composition
root routes ``/api/v1/mcp`` (and ``/api/v1/mcp/``) to; it authenticates the Bearer key of
every request before the SDK sees it, so a missing or bad key is an HTTP 401 in the
reservations dialect's body and no tool runs. Only POST is served: any other method
(a GET that would open an event stream the server never uses) is 405 with ``Allow: POST``,
answered at once. The SDK's session manager must run for the app's lifetime: the root
lifespan enters :meth:`McpApp.lifespan`.
"""

from contextlib import AbstractAsyncContextManager

from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from errand.api.common import principal_for
from errand.api.mcp import auth, errors
from errand.api.mcp.envelope import ENVELOPE_DEPTH, vet
from errand.api.mcp.server import ErrandMCP, build_server
from errand.kit.boundary import InputBoundary, replay
from errand.kit.core import Core
from errand.kit.inputs import MAX_DEPTH
from errand.kit.errors import DomainError, InvalidRequest, NotFound

PATH = "/api/v1/mcp"
PREFIXES = (PATH,)


class McpApp:
    """Authenticate, then hand the request to the SDK's Streamable HTTP transport."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.server: ErrandMCP = build_server(core, auth.from_request)
        # Called for its side effect: it creates the session manager for these settings. The
        # returned Starlette app is not used: its route would answer the bare path with a
        # redirect, which the contract's curl does not follow. DNS-rebinding protection guards
        # unauthenticated local servers; every request here carries an API key instead.
        self.server.streamable_http_app(
            streamable_http_path="/", stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        # Hostile bodies are refused before the key is checked; tool arguments' values (and
        # their depth, below the JSON-RPC envelope's few levels) are checked by
        # ErrandMCP.call_tool, so that stdio gives the same verdict.
        self._bounded = InputBoundary(self._serve, reject=errors.rejected, values=False,
                                      max_depth=MAX_DEPTH + ENVELOPE_DEPTH)

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """Run the SDK's session manager; without it every MCP request fails."""
        return self.server.session_manager.run()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._bounded(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"].rstrip("/") != PATH:
            await self._error(NotFound(f"No MCP endpoint at {scope['path']}; use {PATH}."))(scope, receive, send)
            return
        if scope["method"] != "POST":
            # Stateless JSON mode has no stream to open (GET) and no session to end (DELETE).
            await JSONResponse(
                {"error": {"code": "METHOD_NOT_ALLOWED",
                           "message": f"{PATH} answers POST only: send each JSON-RPC message as a POST body."}},
                status_code=405, headers={"Allow": "POST"})(scope, receive, send)
            return
        try:
            principal = await principal_for(self.core, Headers(scope=scope).get("authorization"))
        except DomainError as exc:
            await self._error(exc)(scope, receive, send)
            return
        body = await _read_body(receive)
        message, error = vet(body)
        if error is not None or message is None:
            error = error or errors.protocol_error(InvalidRequest.code, "A JSON-RPC 2.0 message is required.")
            await JSONResponse(error, status_code=400)(scope, receive, send)
            return
        scope.setdefault("state", {})[auth.STATE_KEY] = principal
        await self.server.session_manager.handle_request(scope, replay(body, receive), send)

    @staticmethod
    def _error(exc: DomainError) -> JSONResponse:
        status = errors.status_for(exc)
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="errand"'
        if exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse(errors.body(exc, with_retry_after=False), status_code=status, headers=headers)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def build(core: Core) -> McpApp:
    return McpApp(core)
