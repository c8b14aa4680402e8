from fastapi import FastAPI

from errand.api.reservations import errors
from errand.api.reservations.routes import router
from errand.kit.core import Core


PREFIXES = ("/api/v1",)


def build(core: Core) -> FastAPI:
    """The reservations dialect: everything under ``/api/v1`` no other dialect claims first."""
    app = FastAPI(title="Errand — reservations API", version="1", docs_url="/api/v1/agent/docs",
                  openapi_url="/api/v1/agent/openapi.json", redoc_url=None, redirect_slashes=False)
    app.state.core = core
    errors.install(app)
    app.include_router(router, prefix="/api/v1")
    return app
