"""The reservations dialect's app (spec/reservations-api.txt): ``/api/v1/agent/…``, policies and transactions."""

from fastapi import FastAPI

from errand.api import openapi
from errand.api.common import dialect_app
from errand.api.reservations import bodies, errors
from errand.api.reservations.routes import router
from errand.kit.core import Core


PREFIXES = ("/api/v1",)
PATHS = ("/api/v1/agent", "/api/v1/policies", "/api/v1/transactions")
TITLE = "Errand — reservations API"
DOCS_URL = "/api/v1/agent/docs"
OPENAPI_URL = "/api/v1/agent/openapi.json"


def build(core: Core) -> FastAPI:
    """The reservations dialect: everything under ``/api/v1`` no other dialect claims first."""
    app = dialect_app(core, title=TITLE, docs_url=DOCS_URL, openapi_url=OPENAPI_URL, install_errors=errors.install)
    openapi.install(app, error_model=openapi.NestedError, auth_header="Authorization",
                    security_scheme={"type": "http", "scheme": "bearer",
                                     "description": "`Authorization: Bearer ar_live_…` (or `ogk_…`)."},
                    description="Book, modify and cancel restaurant tables under your organization's "
                                "policies. Errors are `{\"error\": {\"code\", \"message\", \"details\"?}}` "
                                "with UPPER_CASE codes.",
                    refine=bodies.refine)
    app.include_router(router, prefix="/api/v1")
    return app
