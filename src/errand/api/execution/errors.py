"""The execution dialect's errors: ``{"error": {"code", "message", "details"?}}``, snake_case codes."""

from fastapi import FastAPI

from errand.api.common import install_error_handlers, render_nested

_CODES = {"database_unavailable": "service_unavailable", "database_busy": "service_unavailable"}


def install(app: FastAPI) -> None:
    install_error_handlers(app, render=render_nested, code_for=lambda code: _CODES.get(code, code), issue_key="path")
