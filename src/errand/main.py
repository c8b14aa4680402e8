"""Composition root: builds the core, routes each path prefix to its dialect, runs the lifespan.

``errand mcp`` (a desktop client starts it for every session) loads this module too, for
:func:`run_mcp_stdio`; so what only the HTTP app or the queue needs (FastAPI's app, the
other dialects, the sandbox marketplace, procrastinate) is imported in the function that
builds it, and the stdio server starts in well under two seconds
(``bench/mcp_stdio_startup.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Receive, Scope, Send

from errand import __version__
from errand.approvals import service as approvals_service
from errand.bookings import service as bookings_service
from errand.guard.rate_limits import RateLimits
from errand.jobs import tasks as job_tasks
from errand.kit import crypto, logging
from errand.kit.config import Settings, get_settings
from errand.kit.core import Core
from errand.kit.db import Database
from errand.providers.registry import ProviderRegistry
from errand.runtime.inprocess import InProcessRunner, JobRunner, PeriodicTask

if TYPE_CHECKING:
    from fastapi import FastAPI

    from errand.runtime.queue import JobQueue, QueueWorker


class Dialect(BaseRoute):
    """Hands every request under its prefixes to one dialect's app, path unchanged.

    Unlike a Mount, nothing is stripped, so a dialect can own several prefixes and its own
    error handlers answer even its 404s and 405s in its documented shape.
    """

    def __init__(self, prefixes: Sequence[str], app: ASGIApp) -> None:
        self.prefixes = tuple(prefixes)
        self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            path = scope["path"]
            if any(path == p or path.startswith(p + "/") for p in self.prefixes):
                return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        # A dialect's routes keep their full paths, so its app answers for them as they are;
        # NoMatchFound lets the root router go on to the next route (the sandbox's Mount).
        url_path_for = getattr(self.app, "url_path_for", None)
        if url_path_for is None:
            raise NoMatchFound(name, path_params)
        return url_path_for(name, **path_params)


def build_core(settings: Settings) -> Core:
    crypto.configure(crypto.load_or_create_key(settings.secret_key, settings.data_dir))
    return Core(
        settings=settings,
        db=Database(settings.effective_database_url),
        providers=ProviderRegistry.from_entry_points(settings),
        rate_limits=RateLimits(settings.redis_url),
    )


def periodic_tasks(core: Core, *, recovery: bool = True) -> list[PeriodicTask]:
    """The periodic work of a process that runs background work.

    ``recovery`` adds the embedded runner's job recovery sweep; a procrastinate worker leaves
    it out, since the queue's own periodic task recovers jobs once per tick for all workers.
    """
    from errand.sandbox import service as sandbox_service

    async def release_sandbox_holds() -> None:
        async with core.db.unit_of_work() as session:
            await sandbox_service.release_expired_holds(session)

    async def recover_jobs() -> None:
        for job_id in await job_tasks.recover_jobs(core):
            await core.dispatch(job_id)

    tasks = [
        PeriodicTask("expire_approvals", 15, lambda: approvals_service.expire_due_approvals(core)),
        PeriodicTask("finish_decided_approvals", 30, lambda: bookings_service.finish_decided_approvals(core)),
        PeriodicTask("finish_interrupted_cancels", 30, lambda: bookings_service.finish_interrupted_cancels(core)),
        PeriodicTask("release_sandbox_holds", 30, release_sandbox_holds),
    ]
    if recovery:
        tasks.append(PeriodicTask("recover_jobs", 5, recover_jobs))
    return tasks


def build_queue_worker(core: Core, *, concurrency: int | None = None) -> tuple[JobQueue, QueueWorker]:
    """The procrastinate queue on the core's database, with a worker that also does this process's periodic work."""
    from errand.runtime.queue import JobQueue

    settings = core.settings
    queue = JobQueue(core)
    core.dispatch = queue.dispatch
    worker = queue.worker(concurrency=concurrency or settings.job_concurrency,
                          periodic=periodic_tasks(core, recovery=False),
                          shutdown_seconds=settings.worker_shutdown_seconds)
    return queue, worker


async def run_worker(settings: Settings, *, concurrency: int | None = None) -> None:
    """``errand worker``: consume the procrastinate queue until SIGTERM or SIGINT."""
    logging.configure(settings.log_level)
    core = build_core(settings)
    queue, worker = build_queue_worker(core, concurrency=concurrency)
    try:
        await worker.run_until_signalled()
    finally:
        await queue.close()
        await core.providers.aclose()
        await core.db.dispose()


async def run_mcp_stdio(settings: Settings, api_key: str | None) -> None:
    """``errand mcp``: the MCP tools over stdin/stdout, acting as ``api_key``, until stdin closes."""
    from errand.api.mcp import stdio as mcp_stdio

    logging.configure(settings.log_level)
    core = build_core(settings)
    try:
        await mcp_stdio.serve_stdio(core, api_key)
    finally:
        await core.providers.aclose()
        await core.db.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    from fastapi import FastAPI
    from starlette.routing import Mount

    from errand.api.automations import app as automations_app
    from errand.api.execution import app as execution_app
    from errand.api.mcp import app as mcp_app
    from errand.api.reservations import app as reservations_app
    from errand.runtime.queue import JobQueue
    from errand.sandbox.app import build_sandbox_app

    settings = settings or get_settings()
    logging.configure(settings.log_level)
    core = build_core(settings)
    mcp = mcp_app.build(core)
    jobs = periodic = queue = queue_worker = None
    if settings.runner == "procrastinate":
        # Jobs go to the queue; without --no-worker this process consumes it as well.
        if settings.worker:
            queue, queue_worker = build_queue_worker(core)
        else:
            queue = JobQueue(core)
            core.dispatch = queue.dispatch
    elif settings.worker:
        jobs = JobRunner(lambda job_id: job_tasks.run_job(core, job_id), concurrency=settings.job_concurrency)
        core.dispatch = jobs.dispatch
        periodic = InProcessRunner(periodic_tasks(core))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if queue is not None:
            await queue.open()
        if queue_worker is not None:
            queue_worker.start()
        if jobs is not None and periodic is not None:
            jobs.start()
            periodic.start()
        try:
            async with mcp.lifespan():
                yield
        finally:
            if jobs is not None and periodic is not None:
                await periodic.stop()
                await jobs.stop()
            if queue_worker is not None:
                await queue_worker.stop()
            if queue is not None:
                await queue.close()
            await core.providers.aclose()
            await core.db.dispose()

    app = FastAPI(title="Errand", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.state.core = core

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, object]:
        health: dict[str, object] = {"status": "ok", "version": __version__}
        if queue_worker is not None and queue is not None:
            health["worker"] = queue.health()
        return health

    # First match wins: the narrower prefixes go first.
    app.router.routes.extend([
        Dialect(execution_app.PREFIXES, execution_app.build(core)),
        Dialect(mcp_app.PREFIXES, mcp),
        Dialect(reservations_app.PREFIXES, reservations_app.build(core)),
        Dialect(automations_app.PREFIXES, automations_app.build(core)),
        Mount("/sandbox", app=build_sandbox_app(core.db, core.settings.sandbox_faults, core.settings)),
    ])
    return app
