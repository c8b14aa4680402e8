"""What the sandbox's HTTP modules share: its one error body, request headers, date and time input,
its callers' credentials, its absolute URLs and the headers every answer carries.

The sandbox is a separate origin in spirit, so it has its own error body,
``{"error": "<code>", "message": "…", "nearest": ["HH:MM", …]}``, shared by every API it
serves and by nothing of Errand's dialects.
"""

import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errand.kit.crypto import constant_time_equal
from errand.kit.errors import Unauthorized
from errand.sandbox.catalog import load_catalog
from errand.sandbox.errors import Invalid

STATUS_BY_KIND = {
    "invalid": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404, "conflict": 409, "unavailable": 503,
}


def error_response(
    status: int, code: str, message: str, nearest: list[str] | None = None, retry_after: int | None = None,
    *, suggestions: list[str] | None = None,
) -> JSONResponse:
    """``{"error", "message", "nearest"}``, and ``suggestions`` (nearest venue names) for ``unknown_venue``."""
    headers = {"Retry-After": str(retry_after or 1)} if status == 503 else None
    if status == 401 and code == "unauthorized":
        headers = {"WWW-Authenticate": 'Bearer realm="sandbox"'}
    body: dict[str, Any] = {"error": code, "message": message, "nearest": nearest or []}
    if suggestions is not None:
        body["suggestions"] = suggestions
    return JSONResponse(body, status, headers=headers)


async def _idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    if not idempotency_key or len(idempotency_key) > 128:
        raise Invalid("An Idempotency-Key header of 1 to 128 characters is required.")
    return idempotency_key


IdempotencyKey = Annotated[str, Depends(_idempotency_key)]


def _strict(pattern: str, parse: Any, shape: str) -> Any:
    """Accept only strings of one exact shape: no timestamps, no lenient date formats."""

    def validate(value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            raise ValueError(f"must be {shape}")
        return parse(value)

    return BeforeValidator(validate)


Day = Annotated[date, _strict(r"\d{4}-\d{2}-\d{2}", date.fromisoformat, "a date, YYYY-MM-DD")]
Clock = Annotated[time, _strict(r"\d{2}:\d{2}", time.fromisoformat, "a time, HH:MM")]
LocalStart = Annotated[
    datetime,
    _strict(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", datetime.fromisoformat, "a venue-local start, YYYY-MM-DDTHH:MM"),
]


def caller_check(token_for: Callable[[str], str]) -> Callable[..., Awaitable[None]]:
    """A dependency admitting only the holder of the provider's API credential (Errand).

    Every call to a provider's JSON API (``/api/{provider_id}/…``) must carry
    ``Authorization: Bearer <token_for(provider_id)>``; a missing or wrong token is 401
    ``unauthorized`` (checked before anything else, faults included), so nobody but Errand
    can read a provider's holds and ledger or cancel its bookings. A token opens one
    provider's API only. The web sites' pages stay public, as a real site's are.
    """
    tokens: dict[str, str] = {}
    known = set(load_catalog())

    def token(provider_id: str) -> str:
        # Remembered for the providers the sandbox runs only: a path can name anything.
        if provider_id not in known:
            return token_for(provider_id)
        if provider_id not in tokens:
            tokens[provider_id] = token_for(provider_id)
        return tokens[provider_id]

    async def authenticated(provider_id: str, authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not constant_time_equal(presented.strip(), token(provider_id)):
            raise Unauthorized("This API needs the provider's credential: Authorization: Bearer <token>.")

    return authenticated


def absolute_url(request: Request, name: str, **params: Any) -> str:
    """The absolute URL of the sandbox route ``name``, under the configured public URL.

    Built from configuration (``app.state.public_url``, set by ``build_sandbox_app`` from
    ``Settings.effective_sandbox_url``), never from the request's ``Host``, which anyone can set.
    """
    return request.app.state.public_url + str(request.app.url_path_for(name, **params))


# Sent with every answer: no page of the sandbox may be framed (click-jacking a checkout),
# leak its tokenised URL as a referrer, or be sniffed as another content type.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


# As raw ASGI headers, lower-cased names: added without a MutableHeaders scan per header.
_SECURITY_RAW = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                 for name, value in SECURITY_HEADERS.items()]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = message.get("headers") or []
                present = {bytes(name).lower() for name, _ in raw}
                message["headers"] = [*raw, *(h for h in _SECURITY_RAW if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)
