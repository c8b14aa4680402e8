from fastapi import FastAPI

from errand.api.reservations import errors
from errand.api.reservations.routes import router
from errand.kit.core import Core


def build(core: Core) -> FastAPI:
    """The reservations dialect, mounted at ``/api/v1``."""
    app = FastAPI(title="Errand — reservations API", version="1", docs_url="/agent/docs",
                  openapi_url="/agent/openapi.json", redoc_url=None)
    app.state.core = core
    errors.install(app)
    app.include_router(router)
    return app
