"""One JSON-RPC message from an MCP client, vetted before the SDK sees it, over every transport.

Over stdio each line, over HTTP each POST body, goes through :func:`vet`: the SDK answers some
malformed messages with pydantic's own text, and drops others without a word (an ``id`` that is
a float, an object, ``true`` or ``null`` gets HTTP 202 and no answer), so Errand answers them
itself, in its own words, with the JSON-RPC error of :func:`errand.api.mcp.errors.protocol_error`.
"""

from typing import Any

from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError

from errand.api.mcp import errors
from errand.kit import inputs
from errand.kit.errors import InvalidRequest

# Levels a JSON-RPC request adds around a tool's arguments: the message, params, arguments.
ENVELOPE_DEPTH = 8
_SHAPE = ('Not a JSON-RPC 2.0 message: a request needs "jsonrpc": "2.0", an "id" (a string or an '
          'integer) and a "method" (a string), with "params" an object if given.')


def vet(raw: bytes) -> tuple[str | None, dict[str, Any] | None]:
    """A message from the client: ``(message, None)`` to hand to the SDK, ``(None, error)`` to answer
    with the JSON-RPC error ``error``, or ``(None, None)`` for a blank line.

    The message is read by :func:`errand.kit.inputs.parse_json` with the input boundary's limits
    (size, and depth counted from the tool arguments: the envelope adds :data:`ENVELOPE_DEPTH`),
    must be one JSON-RPC 2.0 object whose ``id``, when present, is a string or an integer (MCP),
    and whose values outside the tool arguments pass the input rules (no control characters,
    finite numbers); tool arguments' values are checked when the tool is called
    (:class:`errand.api.mcp.server.ErrandMCP`), so that a bad argument is a tool error the
    model can read."""
    if not raw.strip():
        return None, None
    if len(raw) > inputs.MAX_BODY_BYTES:
        return None, errors.protocol_error("payload_too_large",
                                           f"The message is larger than {inputs.MAX_BODY_BYTES} bytes.")
    try:
        value = inputs.parse_json(raw, max_depth=inputs.MAX_DEPTH + ENVELOPE_DEPTH, values=False)
    except InvalidRequest as exc:
        return None, errors.protocol_error(exc.code, exc.message, exc.details)
    if isinstance(value, list):
        return None, errors.protocol_error(InvalidRequest.code, "Batches are not supported: send one JSON-RPC "
                                                              "message per request.")
    if not isinstance(value, dict):
        return None, errors.protocol_error(InvalidRequest.code, "A message must be a JSON-RPC 2.0 object.")
    request_id = value.get("id")
    readable_id = request_id if isinstance(request_id, (str, int)) and not isinstance(request_id, bool) else None
    if "id" in value and readable_id is None:
        return None, errors.protocol_error(InvalidRequest.code, "id: must be a string or an integer.",
                                           [{"path": "id", "message": "must be a string or an integer"}])
    if isinstance(readable_id, str) and len(readable_id) > 200:
        return None, errors.protocol_error(InvalidRequest.code, "id: must be at most 200 characters.",
                                           [{"path": "id", "message": "must be at most 200 characters"}])
    try:
        inputs.check_value(_without_arguments(value))
    except InvalidRequest as exc:
        # The id itself may be what is refused: answer without echoing it.
        return None, errors.protocol_error(exc.code, exc.message, exc.details)
    text = raw.decode("utf-8")
    try:
        jsonrpc_message_adapter.validate_json(text, by_name=False)
    except ValidationError:
        return None, errors.protocol_error(InvalidRequest.code, _SHAPE, request_id=readable_id)
    return text, None


def _without_arguments(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` less ``params.arguments``, whose values the tool call checks itself."""
    params = message.get("params")
    if isinstance(params, dict) and "arguments" in params:
        return {**message, "params": {k: v for k, v in params.items() if k != "arguments"}}
    return message
