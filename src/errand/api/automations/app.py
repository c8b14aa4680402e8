from fastapi import FastAPI

from errand.api.automations import errors
from errand.api.automations.routes import router
from errand.kit.core import Core


PREFIXES = ("/api",)


def build(core: Core) -> FastAPI:
    """The automations dialect: everything under ``/api`` no other dialect claims first."""
    app = FastAPI(title="Errand — automations API", version="1", docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None, redirect_slashes=False)
    app.state.core = core
    errors.install(app)
    app.include_router(router, prefix="/api")
    return app
