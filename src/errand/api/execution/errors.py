"""Errors of the execution dialect: ``{"error": {"code", "message", "details"?}}``, snake_case codes."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from errand.api.common import STATUS_BY_KIND, summarize, validation_issues
from errand.kit.errors import DomainError
from errand.kit.logging import get_logger

log = get_logger("errand.api.execution")
_CODES = {"database_unavailable": "service_unavailable", "database_busy": "service_unavailable",
          "not_found": "not_found"}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        if exc.kind == "internal":
            return error_response(500, "internal_error", "An unexpected server error occurred.")
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return error_response(STATUS_BY_KIND[exc.kind], _CODES.get(exc.code, exc.code), exc.message, exc.details,
                              headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [{"path": i["field"], "message": i["message"]} for i in validation_issues(exc)]
        return error_response(400, "invalid_request", summarize([{"field": i["path"], "message": i["message"]}
                                                                 for i in issues]), issues)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
        return error_response(500, "internal_error", "An unexpected server error occurred.")
