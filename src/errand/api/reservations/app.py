from fastapi import FastAPI

from errand.api import openapi
from errand.api.common import NO_TELEMETRY
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
    app = FastAPI(title=TITLE, version="1", docs_url=None, redoc_url=None, openapi_url=OPENAPI_URL,
                  redirect_slashes=False, telemetry=NO_TELEMETRY)
    app.state.core = core
    errors.install(app)
    openapi.add_docs(app, DOCS_URL, TITLE, OPENAPI_URL)
    openapi.install(app, error_model=openapi.NestedError, auth_header="Authorization",
                    security_scheme={"type": "http", "scheme": "bearer",
                                     "description": "`Authorization: Bearer ar_live_…` (or `ogk_…`)."},
                    description="Book, modify and cancel restaurant tables under your organization's "
                                "policies. Errors are `{\"error\": {\"code\", \"message\", \"details\"?}}` "
                                "with UPPER_CASE codes.",
                    refine=bodies.refine)
    app.include_router(router, prefix="/api/v1")
    return app
