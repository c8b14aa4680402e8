from fastapi import FastAPI

from errand.api import openapi
from errand.api.common import dialect_app
from errand.api.execution import bodies, errors, routes, venues, webhooks
from errand.kit.core import Core

PREFIXES = ("/api/v1/execution-jobs", "/api/v1/metrics", "/api/v1/providers", "/api/v1/profiles",
            "/api/v1/provider-events", "/api/v1/venues", "/api/v1/webhooks")
TITLE = "Errand — execution API"
DOCS_URL = "/api/v1/execution-jobs/docs"
OPENAPI_URL = "/api/v1/execution-jobs/openapi.json"


def build(core: Core) -> FastAPI:
    """The execution dialect, serving the paths under ``PREFIXES`` (full paths, nothing stripped)."""
    app = dialect_app(core, title=TITLE, docs_url=DOCS_URL, openapi_url=OPENAPI_URL, install_errors=errors.install)
    openapi.install(app, error_model=openapi.NestedError, auth_header="Authorization",
                    security_scheme={"type": "http", "scheme": "bearer",
                                     "description": "`Authorization: Bearer ogk_live_…` (or `ar_…`)."},
                    extra_components=bodies.COMPONENTS,
                    description="Book restaurants, hotels, flights and activities through the autopilot. "
                                "Errors are `{\"error\": {\"code\", \"message\", \"details\"?}}` with "
                                "snake_case codes.")
    for prefix, router in zip(PREFIXES, (routes.jobs, routes.metrics, routes.providers, routes.profiles,
                                         routes.provider_events, venues.router,
                                         webhooks.router)):
        app.include_router(router, prefix=prefix)
    return app
