"""The MCP server's failures, in the reservations dialect's words.

MCP belongs to the reservations contract (it is served at ``/api/v1/mcp`` beside
``/api/v1/agent/…``), so a failure reads the same as there: ``{"error": {"code",
"message", "details"?}}`` with UPPER_CASE codes. Where it travels differs:

- a failure of a tool call is a tool result with ``isError: true`` whose text is that
  body (plus ``retryAfterSeconds`` when there is a wait to respect: MCP has no headers),
  so the model reads the code, the message and the details it needs to act, such as
  ``nearestAvailableTimes`` on CAPACITY_EXCEEDED;
- a failure before any tool runs (no key, a bad key, the daily limit) is an HTTP error
  with the same body, answered by :mod:`errand.api.mcp.app`;
- protocol errors (malformed JSON-RPC, unknown methods) stay JSON-RPC errors, answered
  by the SDK; so is a message the input boundary refuses before anything else runs (too
  large: HTTP 413; not UTF-8, not JSON, nested too deep, duplicate keys: HTTP 400; over
  stdio, each such line), with the reservations code and details in the error's ``data``
  (:func:`protocol_error`);
- a call to a tool that does not exist is a tool result like any failed call, NOT_FOUND
  (:func:`unknown_tool`).

The one failure only MCP raises is :class:`MissingApiKey` (``errand mcp`` without a key).
"""

import json
from typing import Any

from mcp_types import INVALID_REQUEST, PARSE_ERROR, CallToolResult, TextContent
from pydantic import ValidationError
from starlette.responses import JSONResponse

from errand.api.reservations import vocabulary
from errand.api.common import STATUS_BY_KIND, issue_details
from errand.kit import inputs
from errand.kit.errors import DomainError, Unauthorized
from errand.kit.logging import get_logger

_log = get_logger("errand.api.mcp")

_INTERNAL = ("INTERNAL_ERROR", "An unexpected server error occurred.")


class MissingApiKey(Unauthorized):
    """``errand mcp`` started without ``ERRAND_API_KEY``: there is no one to act as."""

    code = "missing_api_key"


def code_for(exc: DomainError) -> str:
    return _INTERNAL[0] if exc.kind == "internal" else vocabulary.code_for(exc.code)


def body(exc: DomainError, *, with_retry_after: bool = True) -> dict[str, Any]:
    """The reservations dialect's error body for ``exc``; bugs say nothing about themselves.

    Over HTTP the wait travels in ``Retry-After`` as in REST; in a tool result it is
    ``retryAfterSeconds``, since a tool result has no headers. A replayed error (the stored
    outcome of an earlier call with the same idempotency key) says ``replayed: true``, as a
    replayed success does."""
    if exc.kind == "internal":
        return {"error": {"code": _INTERNAL[0], "message": _INTERNAL[1]}}
    error: dict[str, Any] = {"code": code_for(exc), "message": exc.message}
    if exc.details:
        error["details"] = exc.details
    if exc.retry_after and with_retry_after:
        error["retryAfterSeconds"] = exc.retry_after
    if exc.replayed:
        error["replayed"] = True
    return {"error": error}


def status_for(exc: DomainError) -> int:
    return STATUS_BY_KIND.get(exc.kind, 500)


def tool_error(exc: DomainError) -> CallToolResult:
    """A failed tool call: ``isError: true`` and the error body as its text."""
    if exc.kind == "internal":
        _log.error("mcp_tool_internal_error", code=exc.code)
    return _result(body(exc))


def invalid_arguments(tool: str, exc: ValidationError) -> CallToolResult:
    """Arguments that do not fit the tool's input schema: INVALID_REQUEST naming each field."""
    details = issue_details(inputs.issues(exc), "field")
    return invalid(tool, details)


def invalid(tool: str, details: list[dict[str, Any]]) -> CallToolResult:
    """INVALID_REQUEST for ``tool``, with ``details`` as ``[{field, message}]``."""
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return _result({"error": {
        "code": "INVALID_REQUEST",
        "message": f"The arguments of {tool} are invalid: {summary}. Fix them and call again.",
        "details": details,
    }})


def rejected(status: int, code: str, message: str, details: Any) -> JSONResponse:
    """A request body refused by the input boundary, as the JSON-RPC error the SDK itself sends
    for a body it cannot parse (no request id is known), at HTTP ``status``."""
    return JSONResponse(protocol_error(code, message, details), status_code=status)


def protocol_error(code: str, message: str, details: Any = None, *, request_id: str | int | None = None
                   ) -> dict[str, Any]:
    """A JSON-RPC error message for a message refused before any method runs, over any transport.

    ``code`` is the core's: ``invalid_json`` (not JSON, not UTF-8, nested too deep) is a parse
    error (-32700), anything else an invalid request (-32600). ``data`` carries the
    reservations dialect's code and the ``[{field, message}]`` details. ``request_id`` is the
    message's id when it could be read, else ``null`` as JSON-RPC prescribes."""
    data: dict[str, Any] = {"code": vocabulary.code_for(code)}
    if details:
        data["details"] = issue_details(details, "field")
    rpc_code = PARSE_ERROR if code == "invalid_json" else INVALID_REQUEST
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": rpc_code, "message": message, "data": data}}


def unknown_tool(name: str, known: list[str]) -> CallToolResult:
    """A call to a tool the server does not have: NOT_FOUND, naming the tools it has."""
    return _result({"error": {
        "code": "NOT_FOUND",
        "message": f"There is no tool named {name[:80]!r}; the tools are: {', '.join(known)}.",
    }})


def unexpected() -> CallToolResult:
    return _result({"error": {"code": _INTERNAL[0], "message": _INTERNAL[1]}})


def _result(payload: dict[str, Any]) -> CallToolResult:
    text = json.dumps(payload, ensure_ascii=False, default=str)
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
