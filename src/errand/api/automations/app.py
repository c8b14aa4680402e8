from fastapi import FastAPI

from errand.api import openapi
from errand.api.common import dialect_app
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
    app = dialect_app(core, title=TITLE, docs_url=DOCS_URL, openapi_url=OPENAPI_URL, install_errors=errors.install)
    openapi.install(app, error_model=openapi.FlatError, auth_header="X-Integration-Key",
                    security_scheme={"type": "apiKey", "in": "header", "name": "X-Integration-Key",
                                     "description": "An Errand API key (admin to decide approvals)."},
                    description="Approval gates. Errors are `{\"error\", \"message\", \"status\"}` with "
                                "snake_case codes.")
    app.include_router(router, prefix="/api")
    return app
