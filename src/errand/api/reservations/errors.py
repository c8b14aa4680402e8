"""The reservations dialect's errors: ``{"error": {"code", "message", "details"?}}``, UPPER_CASE codes."""

from fastapi import FastAPI

from errand.api.common import install_error_handlers, render_nested
from errand.api.reservations import vocabulary


def install(app: FastAPI) -> None:
    install_error_handlers(app, render=render_nested, code_for=vocabulary.code_for)
