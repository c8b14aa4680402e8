"""What every dialect needs and nothing dialect-specific: status per error kind, the core handle."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles

from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit import inputs, timing
from errand.kit.boundary import InputBoundary
from errand.kit.core import Core
from errand.kit.errors import DomainError, RateLimited, Unavailable
from errand.kit.logging import get_logger

if TYPE_CHECKING:  # FastAPI is imported where an app is built: `errand mcp` starts faster without it.
    from fastapi import FastAPI, Request

_log = get_logger("errand.api")

# Retry-After on a 503 whose cause did not say how long to wait (a provider unreachable or timing out,
# a busy database): every 503 tells the client when to come back (RFC 9110 §10.2.3).
UNAVAILABLE_RETRY_AFTER_SECONDS = 5

STATUS_BY_KIND = {
    "invalid": 400, "unauthorized": 401, "payment_required": 402, "forbidden": 403, "not_found": 404, "conflict": 409,
    "rate_limited": 429, "unavailable": 503, "internal": 500,
}


# FastAPI's native OpenTelemetry (0.165+) checks the global providers on every request and wraps
# each app in one more middleware; Errand adds OpenTelemetry deliberately when it wants it.
NO_TELEMETRY: dict[str, Any] = {"tracing": False, "metrics": False, "logs": False}


def dialect_app(core: Core, *, title: str, docs_url: str, openapi_url: str,
                install_errors: Callable[[FastAPI], None]) -> FastAPI:
    """A dialect's app as every dialect starts it: FastAPI without its own docs routes, trailing-slash
    redirects or telemetry, holding ``core``, answering errors in the dialect's words
    (``install_errors``) and serving Swagger UI at ``docs_url`` for the document at ``openapi_url``.
    The caller adds its OpenAPI settings (:func:`errand.api.openapi.install`) and its routers."""
    from fastapi import FastAPI

    from errand.api import openapi

    app = FastAPI(title=title, version="1", docs_url=None, redoc_url=None, openapi_url=openapi_url,
                  redirect_slashes=False, telemetry=NO_TELEMETRY)
    app.state.core = core
    install_errors(app)
    openapi.add_docs(app, docs_url, title, openapi_url)
    return app


def _as_json(value: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value)


# Starlette's JSONResponse settings, built once; what json cannot encode (a datetime, a Decimal, a
# model) is encoded as FastAPI would encode a route's return value.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_as_json)


class JSONBody(JSONResponse):
    """A route's JSON answer, encoded once: the same bytes FastAPI sends for a returned dict.

    A route that returns a dict has it walked by ``jsonable_encoder`` and then encoded; this
    encodes it directly (``default`` hands anything else to ``jsonable_encoder``). The route's
    ``status_code=`` decorator argument does not apply to a returned response: pass it here.
    A non-finite float raises ValueError, as with JSONResponse.
    """

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("utf-8")


Render = Callable[[int, str, str, Any, "dict[str, str] | None"], "JSONResponse"]


def render_nested(status: int, code: str, message: str, details: Any,
                  headers: "dict[str, str] | None") -> "JSONResponse":
    """``{"error": {"code", "message", "details"?}}``: the body of the execution and reservations
    dialects (and of the root's own paths), ``details`` left out when empty."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, *, render: Render, code_for: Callable[[str], str],
                           issue_key: str = "field") -> None:
    """One dialect's error handling: every failure in its own body shape and code words.

    ``render(status, code, message, details, headers)`` draws the body; ``code_for`` turns
    the core's snake_case code into the dialect's; ``issue_key`` names the path in each
    ``details`` entry. The input boundary (:class:`errand.kit.boundary.InputBoundary`) is
    installed here too, so every dialect refuses hostile input before authentication, in its
    own body. Bugs are logged and answered as 500 without detail; nothing a client sends may
    reach that branch.
    """
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError

    def reject(status: int, code: str, message: str, details: Any) -> JSONResponse:
        return render(status, code_for(code), message, issue_details(details, issue_key), None)

    app.add_middleware(InputBoundary, reject=reject)

    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        if exc.kind == "internal":
            return render(500, code_for("internal_error"), "An unexpected server error occurred.", None, None)
        wait = exc.retry_after or (UNAVAILABLE_RETRY_AFTER_SECONDS if exc.kind == "unavailable" else None)
        headers = {"Retry-After": str(wait)} if wait else {}
        if exc.replayed:
            headers["Idempotent-Replayed"] = "true"
        details = issue_details(exc.details, issue_key)
        return render(STATUS_BY_KIND[exc.kind], code_for(exc.code), exc.message, details, headers or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = inputs.issues(exc.errors())
        return render(400, code_for("invalid_request"), inputs.summarize(issues) + ".",
                      issue_details(issues, issue_key), None)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        status, code, message, headers = routing_error(request, exc)
        return render(status, code_for(code), message, None, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
        return render(500, code_for("internal_error"), "An unexpected server error occurred.", None, None)


def core_of(request: Request) -> Core:
    return request.app.state.core


def issue_details(details: Any, issue_key: str) -> Any:
    """``details`` with each ``{path, message}`` issue's path under the dialect's own key.

    The core and :mod:`errand.kit.inputs` name it ``path``; the reservations dialect says
    ``field``. Details of another shape pass unchanged."""
    if issue_key == "path" or not isinstance(details, list):
        return details
    return [{issue_key: d["path"], **{k: v for k, v in d.items() if k != "path"}}
            if isinstance(d, dict) and "path" in d else d for d in details]


async def bearer_principal(request: Request, authorization: str | None) -> Principal:
    """The caller of an ``Authorization: Bearer`` key, checked, with its daily request limit applied.

    A database that cannot be reached fails closed: Unavailable ``auth_backend_unavailable``.
    """
    return await principal_for(core_of(request), authorization)


async def principal_for(core: Core, authorization: str | None) -> Principal:
    """:func:`bearer_principal` for callers that hold the core but no request (MCP over HTTP or stdio)."""
    return await key_principal(core, identity_service.parse_authorization(authorization))


async def key_principal(core: Core, raw: str) -> Principal:
    """The caller of a bare API key (however it travelled: Bearer, ``X-Integration-Key``), checked,
    with its daily request limit applied: every route of every dialect counts against it.

    Raises Unauthorized, RateLimited ``rate_limited`` (with the wait) or AuthBackendUnavailable
    (Unavailable ``auth_backend_unavailable``)."""
    with timing.phase("auth"):
        try:
            caller = await core.authenticator.authenticate(raw)
        except Unavailable as exc:
            raise identity_service.AuthBackendUnavailable("Authentication is unavailable; retry shortly.") from exc
        retry_after = await core.rate_limits.hit_key_daily(caller.api_key_id, caller.rate_limit_per_day)
    if retry_after is not None:
        raise RateLimited(f"This API key allows {caller.rate_limit_per_day} requests per day.",
                          retry_after=retry_after)
    return caller


def routing_error(request: Request, exc: HTTPException) -> tuple[int, str, str, dict[str, str] | None]:
    """A router's own failure (no route, wrong method) as ``(status, core code, message, headers)``.

    A 405 carries ``Allow`` with every method the path answers (RFC 9110), gathered from all the
    app's routes for the path, not only the first that matched, and HEAD wherever GET is.
    """
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        return 404, "not_found", f"No route {method} {path}.", None
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        return 405, "method_not_allowed", f"{method} is not allowed on {path}; use {', '.join(allowed)}.", {
            **(exc.headers or {}), "Allow": ", ".join(allowed)}
    code = "invalid_request" if exc.status_code < 500 else "internal_error"
    return exc.status_code, code, str(exc.detail), exc.headers or None


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """The methods some route of the request's app answers at the request's path.

    Each method is tried against the routes (any kind, included routers too) as the router would;
    a mount of static files answers GET. HEAD is listed wherever GET is.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Mount):
            # The mount has already rewritten the scope for its app: compare the full path.
            if isinstance(route.app, StaticFiles) and request.url.path.startswith(route.path + "/"):
                methods.add("GET")
            continue
        methods.update(m for m in _METHODS if route.matches({**request.scope, "method": m})[0] == Match.FULL)
    if "GET" in methods:
        methods.add("HEAD")
    return [m for m in _METHODS if m in methods]
