from fastapi import FastAPI

from errand.api.execution import errors, routes, venues
from errand.kit.core import Core

PREFIXES = ("/api/v1/execution-jobs", "/api/v1/metrics", "/api/v1/providers", "/api/v1/profiles",
            "/api/v1/provider-events", "/api/v1/venues")


def build(core: Core) -> FastAPI:
    """The execution dialect, serving the paths under ``PREFIXES`` (full paths, nothing stripped)."""
    app = FastAPI(title="Errand — execution API", version="1", docs_url="/api/v1/execution-jobs/docs",
                  openapi_url="/api/v1/execution-jobs/openapi.json", redoc_url=None, redirect_slashes=False)
    app.state.core = core
    errors.install(app)
    for prefix, router in zip(PREFIXES, (routes.jobs, routes.metrics, routes.providers, routes.profiles,
                                         routes.provider_events, venues.router)):
        app.include_router(router, prefix=prefix)
    return app
