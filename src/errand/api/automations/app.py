from fastapi import FastAPI

from errand.api.automations import errors
from errand.api.automations.routes import router
from errand.kit.core import Core


def build(core: Core) -> FastAPI:
    """The automations dialect, mounted at ``/api``."""
    app = FastAPI(title="Errand — automations API", version="1", docs_url="/docs", redoc_url=None)
    app.state.core = core
    errors.install(app)
    app.include_router(router)
    return app
