"""The reservations dialect's errors: ``{"error": {"code", "message", "details"?}}``, UPPER_CASE codes."""

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from errand.api.reservations import vocabulary
from errand.api.common import install_error_handlers

def _render(status: int, code: str, message: str, details: Any, headers: dict[str, str] | None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    install_error_handlers(app, render=_render, code_for=vocabulary.code_for)
