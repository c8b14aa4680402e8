"""The execution dialect's errors: ``{"error": {"code", "message", "details"?}}``, snake_case codes.

Besides the core's errors, the dialect declares the two its paths can be missing.
"""

from fastapi import FastAPI

from errand.api.common import install_error_handlers, render_nested
from errand.kit.errors import InvalidRequest

CODES = {"database_unavailable": "service_unavailable", "database_busy": "service_unavailable"}


class MissingJobId(InvalidRequest):
    """A job path whose job id is blank (400)."""

    code = "missing_job_id"


class MissingProviderId(InvalidRequest):
    """A provider metrics path without its provider id (400)."""

    code = "missing_provider_id"


def install(app: FastAPI) -> None:
    install_error_handlers(app, render=render_nested, code_for=lambda code: CODES.get(code, code), issue_key="path")
