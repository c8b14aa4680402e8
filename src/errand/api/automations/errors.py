"""The automations dialect's errors: ``{"error", "message", "status"}``, snake_case codes."""

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from errand.api.common import install_error_handlers

CODES = {
    "missing_authorization": "unauthorized", "invalid_auth_scheme": "unauthorized",
    "empty_api_key": "unauthorized", "malformed_api_key": "unauthorized", "invalid_api_key": "unauthorized",
    "database_unavailable": "service_unavailable", "database_busy": "service_unavailable",
}


def _render(status: int, code: str, message: str, details: Any, headers: dict[str, str] | None) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "message": message, "status": status}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    install_error_handlers(app, render=_render, code_for=lambda code: CODES.get(code, code))
