"""The reservations dialect's errors: ``{"error": {"code", "message", "details"?}}``, UPPER_CASE codes."""

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from errand.api.common import install_error_handlers

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


def _render(status: int, code: str, message: str, details: Any, headers: dict[str, str] | None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    install_error_handlers(app, render=_render, code_for=lambda code: _CODES.get(code, code.upper()))
