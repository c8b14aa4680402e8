"""Composition root: builds the core, mounts the dialects and the sandbox, runs the lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import Mount

from errand import __version__
from errand.api.automations import app as automations_app
from errand.api.reservations import app as reservations_app
from errand.bookings import service as bookings_service
from errand.guard.rate_limits import RateLimits
from errand.kit import crypto, logging
from errand.kit.config import Settings, get_settings
from errand.kit.core import Core
from errand.kit.db import Database
from errand.providers.registry import ProviderRegistry
from errand.runtime.inprocess import InProcessRunner, PeriodicTask
from errand.sandbox import service as sandbox_service
from errand.sandbox.app import build_sandbox_app


def build_core(settings: Settings) -> Core:
    crypto.configure(crypto.load_or_create_key(settings.secret_key, settings.data_dir))
    return Core(
        settings=settings,
        db=Database(settings.effective_database_url),
        providers=ProviderRegistry.from_entry_points(settings),
        rate_limits=RateLimits(settings.redis_url),
    )


def periodic_tasks(core: Core) -> list[PeriodicTask]:
    async def release_sandbox_holds() -> None:
        async with core.db.unit_of_work() as session:
            await sandbox_service.release_expired_holds(session)

    return [
        PeriodicTask("expire_approvals", 15, lambda: bookings_service.expire_due_approvals(core)),
        PeriodicTask("finish_decided_approvals", 30, lambda: bookings_service.finish_decided_approvals(core)),
        PeriodicTask("release_sandbox_holds", 30, release_sandbox_holds),
    ]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.configure(settings.log_level)
    core = build_core(settings)
    runner = InProcessRunner(periodic_tasks(core)) if settings.worker else None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            await core.providers.aclose()
            await core.db.dispose()

    app = FastAPI(title="Errand", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.core = core

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    # Order matters: a Mount matches by prefix, the most specific first.
    app.router.routes.extend([
        Mount("/api/v1", app=reservations_app.build(core)),
        Mount("/api", app=automations_app.build(core)),
        Mount("/sandbox", app=build_sandbox_app(core.db)),
    ])
    return app
