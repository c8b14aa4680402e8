from fastapi import FastAPI

from errand.api import openapi
from errand.api.common import dialect_app
from errand.api.automations import agents, bodies, errors, executions, ingest
from errand.api.automations.routes import router
from errand.kit.core import Core


PREFIXES = ("/api",)
PATHS = ("/api/agents", "/api/approvals", "/api/templates", "/api/events", "/api/credits", "/api/executions")
TITLE = "Errand — automations API"
DOCS_URL = "/api/docs"
OPENAPI_URL = "/api/openapi.json"


def build(core: Core) -> FastAPI:
    """The automations dialect: everything under ``/api`` no other dialect claims first."""
    app = dialect_app(core, title=TITLE, docs_url=DOCS_URL, openapi_url=OPENAPI_URL, install_errors=errors.install)
    openapi.install(app, error_model=openapi.FlatError, auth_header="X-Integration-Key",
                    security_scheme={"type": "apiKey", "in": "header", "name": "X-Integration-Key",
                                     "description": "An Errand API key: any key reads, an admin key manages "
                                                    "agents and decides approvals."},
                    extra_components=bodies.COMPONENTS, refine=bodies.refine,
                    description="Agents that react to events with steps, their templates, the event catalog, "
                                "credits and approval gates. Errors are `{\"error\", \"message\", \"status\"}` "
                                "with snake_case codes.")
    app.include_router(router, prefix="/api")
    app.include_router(agents.router, prefix="/api")
    app.include_router(executions.router, prefix="/api")
    app.include_router(ingest.router, prefix="/api")
    return app
