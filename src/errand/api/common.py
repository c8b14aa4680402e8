"""What every dialect needs and nothing dialect-specific: status per error kind, the core handle."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles

from errand.identity import service as identity_service
from errand.identity.schemas import Principal
from errand.kit.core import Core
from errand.kit.errors import DomainError, RateLimited, Unavailable
from errand.kit.logging import get_logger

_log = get_logger("errand.api")

STATUS_BY_KIND = {
    "invalid": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404, "conflict": 409,
    "rate_limited": 429, "unavailable": 503, "internal": 500,
}


Render = Callable[[int, str, str, Any, dict[str, str] | None], JSONResponse]


def install_error_handlers(app: FastAPI, *, render: Render, code_for: Callable[[str], str],
                           issue_key: str = "field") -> None:
    """One dialect's error handling: every failure in its own body shape and code words.

    ``render(status, code, message, details, headers)`` draws the body; ``code_for`` turns
    the core's snake_case code into the dialect's. Bugs are logged and answered as 500
    without detail; nothing a client sends may reach that branch.
    """

    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        if exc.kind == "internal":
            return render(500, code_for("internal_error"), "An unexpected server error occurred.", None, None)
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return render(STATUS_BY_KIND[exc.kind], code_for(exc.code), exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = validation_issues(exc)
        details = [{issue_key: i["field"], "message": i["message"]} for i in issues]
        return render(400, code_for("invalid_request"), summarize(issues), details, None)

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


def validation_issues(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors as ``{field, message}``, field paths in the client's own names."""
    issues = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        if err.get("type") == "json_invalid":
            issues.append({"field": "body", "message": "Request body is not valid JSON."})
            continue
        msg = err.get("msg", "invalid")
        if err.get("type") == "missing" and not loc:
            msg = "A JSON request body is required."
        issues.append({"field": ".".join(loc) or "body", "message": msg})
    return issues


def summarize(issues: list[dict[str, Any]]) -> str:
    return "; ".join(f"{i['field']}: {i['message']}" for i in issues)


async def bearer_principal(request: Request, authorization: str | None) -> Principal:
    """The caller of an ``Authorization: Bearer`` key, checked, with its daily request limit applied.

    A database that cannot be reached fails closed: Unavailable ``auth_backend_unavailable``.
    """
    return await principal_for(core_of(request), authorization)


async def principal_for(core: Core, authorization: str | None) -> Principal:
    """:func:`bearer_principal` for callers that hold the core but no request (MCP over HTTP or stdio)."""
    raw = identity_service.parse_authorization(authorization)
    try:
        caller = await identity_service.authenticate(core.db, raw)
    except Unavailable as exc:
        raise Unavailable("auth_backend_unavailable", "Authentication is unavailable; retry shortly.") from exc
    retry_after = await core.rate_limits.hit_key_daily(caller.api_key_id, caller.rate_limit_per_day)
    if retry_after is not None:
        raise RateLimited("rate_limited", f"This API key allows {caller.rate_limit_per_day} requests per day.",
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
