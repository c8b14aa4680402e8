"""The execution dialect's errors: ``{"error": {"code", "message", "details"?}}``, snake_case codes."""

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from errand.api.common import install_error_handlers

_CODES = {"database_unavailable": "service_unavailable", "database_busy": "service_unavailable"}


def _render(status: int, code: str, message: str, details: Any, headers: dict[str, str] | None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    install_error_handlers(app, render=_render, code_for=lambda code: _CODES.get(code, code), issue_key="path")
