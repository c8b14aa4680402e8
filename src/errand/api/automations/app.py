from fastapi import FastAPI

from errand.api import openapi
from errand.api.common import NO_TELEMETRY
from errand.api.automations import errors
from errand.api.automations.routes import router
from errand.kit.core import Core


PREFIXES = ("/api",)
PATHS = ("/api/approvals",)
TITLE = "Errand — automations API"
DOCS_URL = "/api/docs"
OPENAPI_URL = "/api/openapi.json"


def build(core: Core) -> FastAPI:
    """The automations dialect: everything under ``/api`` no other dialect claims first."""
    app = FastAPI(title=TITLE, version="1", docs_url=None, redoc_url=None, openapi_url=OPENAPI_URL,
                  redirect_slashes=False, telemetry=NO_TELEMETRY)
    app.state.core = core
    errors.install(app)
    openapi.add_docs(app, DOCS_URL, TITLE, OPENAPI_URL)
    openapi.install(app, error_model=openapi.FlatError, auth_header="X-Integration-Key",
                    security_scheme={"type": "apiKey", "in": "header", "name": "X-Integration-Key",
                                     "description": "An Errand API key (admin to decide approvals)."},
                    description="Approval gates. Errors are `{\"error\", \"message\", \"status\"}` with "
                                "snake_case codes.")
    app.include_router(router, prefix="/api")
    return app
