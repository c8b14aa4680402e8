"""The input boundary as pure ASGI middleware, installed on every app that takes HTTP input.

Before routing, authentication or any handler runs, :class:`InputBoundary` refuses:

- a path or query string with control characters once percent-decoded, or query bytes that
  are not UTF-8 (``/api/v1/transactions/%00``): 400;
- a body over ``max_body`` bytes: 413, judged by ``Content-Length`` when given and otherwise
  by counting the chunks as they arrive, never reading past the limit;
- a JSON body (``application/json``, ``…+json`` or no content type) that
  :func:`errand.kit.inputs.parse_json` refuses: 400;
- a form (``application/x-www-form-urlencoded``) that is not UTF-8 or whose fields hold
  control characters: 400.

The answer is drawn by the app's own ``reject(status, code, message, details)`` callback, which
returns an ASGI response, so each dialect keeps its documented error body and this module needs
no web framework. Codes: ``invalid_request`` and ``invalid_json`` (400),
``payload_too_large`` (413). A body that passes is replayed to the app unchanged; its parsed
value is left in ``scope["state"][PARSED_BODY]`` so a handler need not parse it again.
"""

import asyncio
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes

from errand.kit.errors import InvalidRequest
from errand.kit.inputs import MAX_BODY_BYTES, MAX_DEPTH, check_value, parse_json

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Reject = Callable[[int, str, str, Any], ASGIApp]

PARSED_BODY = "errand_json_body"
_CONTROL_BYTES = re.compile(rb"[\x00-\x1f\x7f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Parsing a large body takes long enough to stall other requests: do it off the event loop.
_THREAD_ABOVE = 64 * 1024


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _is_form(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


def _check_form(body: bytes) -> None:
    """A form's fields as a JSON body's: UTF-8, no control characters (tab and line breaks in values)."""
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise _Refused(400, "invalid_request", "The form is not valid UTF-8.") from None
    try:
        check_value(fields)
    except InvalidRequest as exc:
        raise _Refused(400, exc.code, exc.message, exc.details) from None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


# Request headers that carry one value (RFC 9110 §5.3): sent twice, which one counts is ambiguous.
_SINGLE_HEADERS = {b"authorization": "Authorization", b"idempotency-key": "Idempotency-Key",
                   b"x-integration-key": "X-Integration-Key", b"content-type": "Content-Type"}


def _check_headers(scope: Scope) -> None:
    seen: set[bytes] = set()
    for key, _value in scope.get("headers", ()):
        name = key.lower()
        if name in _SINGLE_HEADERS:
            if name in seen:
                label = _SINGLE_HEADERS[name]
                raise _Refused(400, "invalid_request", f"The {label} header must be sent once.",
                               [{"path": label, "message": "must be sent once"}])
            seen.add(name)


def _check_target(scope: Scope) -> None:
    if _CONTROL.search(scope.get("path", "")) or _CONTROL_BYTES.search(scope.get("raw_path") or b""):
        raise _Refused(400, "invalid_request", "The path contains control characters.",
                       [{"path": "path", "message": "must not contain control characters"}])
    query = scope.get("query_string") or b""
    decoded = unquote_to_bytes(query.replace(b"+", b" "))
    if _CONTROL_BYTES.search(decoded):
        raise _Refused(400, "invalid_request", "The query string contains control characters.",
                       [{"path": "query", "message": "must not contain control characters"}])
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(400, "invalid_request", "The query string is not valid UTF-8.",
                       [{"path": "query", "message": "must be UTF-8"}]) from None


def _too_large(limit: int) -> _Refused:
    return _Refused(413, "payload_too_large", f"The request body is larger than {limit} bytes.")


class InputBoundary:
    """ASGI middleware: the checks above, then ``app``; ``reject`` renders each refusal.

    ``values=False`` leaves the values inside a JSON body (strings, numbers, spellings) to
    the app, and checks only its size, encoding, syntax, depth and duplicate keys: the MCP
    server checks tool arguments itself so that stdio gets the same verdict."""

    def __init__(self, app: ASGIApp, *, reject: Reject, max_body: int = MAX_BODY_BYTES,
                 max_depth: int = MAX_DEPTH, values: bool = True) -> None:
        self.app = app
        self.reject = reject
        self.max_body = max_body
        self.max_depth = max_depth
        self.values = values

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_target(scope)
            _check_headers(scope)
            body = await self._body(scope, receive)
            if body is not None:
                receive = replay(body, receive)
                content_type = _header(scope, b"content-type")
                if body and _is_json(content_type):
                    parsed = await self._parse(body)
                    scope.setdefault("state", {})[PARSED_BODY] = parsed
                elif body and _is_form(content_type):
                    _check_form(body)
        except _Refused as exc:
            await self.reject(exc.status, exc.code, exc.message, exc.details)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when the request announces none (nothing is read then)."""
        length = _header(scope, b"content-length")
        chunked = "chunked" in (_header(scope, b"transfer-encoding") or "").lower()
        if length is None and not chunked:
            return None
        if length is not None:
            if not length.strip().isdigit():
                raise _Refused(400, "invalid_request", "The Content-Length header is not a number.")
            if int(length) > self.max_body:
                raise _too_large(self.max_body)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body and the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _too_large(self.max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _parse(self, body: bytes) -> Any:
        try:
            if len(body) > _THREAD_ABOVE:
                return await asyncio.to_thread(parse_json, body, max_depth=self.max_depth, values=self.values)
            return parse_json(body, max_depth=self.max_depth, values=self.values)
        except InvalidRequest as exc:
            raise _Refused(400, exc.code, exc.message, exc.details) from None


def replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the next app: ``body``, read once already, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
