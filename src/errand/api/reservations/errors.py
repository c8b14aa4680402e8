"""Rendering of the reservations dialect's errors: ``{"error": {"code", "message"}}``."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from errand.api.common import STATUS_BY_KIND, summarize, validation_issues
from errand.kit.errors import DomainError
from errand.kit.logging import get_logger

log = get_logger("errand.api.reservations")

# Core codes whose name differs in this dialect; the rest are upper-cased.
_CODES = {
    "scenario_not_allowed": "POLICY_VIOLATION",
    "missing_authorization": "UNAUTHORIZED",
    "invalid_auth_scheme": "UNAUTHORIZED",
    "empty_api_key": "UNAUTHORIZED",
    "malformed_api_key": "UNAUTHORIZED",
    "invalid_api_key": "UNAUTHORIZED",
    "database_unavailable": "SERVICE_UNAVAILABLE",
    "database_busy": "SERVICE_UNAVAILABLE",
    "approval_not_found": "NOT_FOUND",
}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def render(exc: DomainError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    if exc.kind == "internal":
        return error_response(500, "INTERNAL_ERROR", "An unexpected server error occurred.")
    return error_response(STATUS_BY_KIND[exc.kind], _CODES.get(exc.code, exc.code.upper()), exc.message,
                          exc.details, headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return render(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = validation_issues(exc)
        return error_response(400, "INVALID_REQUEST", summarize(issues), issues)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "INVALID_REQUEST")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
        return error_response(500, "INTERNAL_ERROR", "An unexpected server error occurred.")
