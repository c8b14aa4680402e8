"""Composition root of the HTTP app, the worker and the sandbox served alone: routes each path
prefix to its dialect, runs the lifespan. The core itself and ``errand mcp`` are composed in
:mod:`errand.composition`, which imports no web framework, so the stdio server starts fast
(``bench/mcp_stdio_startup.py``). The job queue (procrastinate, psycopg) is imported only by a
process that uses it, so a default ``errand serve`` stays small at idle.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.datastructures import URLPath
from starlette.exceptions import HTTPException
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Match, Mount, NoMatchFound, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errand import __version__
from errand.api import openapi
from errand.api.automations import app as automations_app
from errand.api.common import NO_TELEMETRY, JSONBody, render_nested, routing_error
from errand.api.execution import app as execution_app
from errand.api.mcp import app as mcp_app
from errand.api.observability import Observe, Readiness, add_observability_routes
from errand.api.reservations import app as reservations_app
from errand.api.replays import ReplayShortcut
from errand.composition import build_core
from errand.kit import crypto, logging, metrics, timing, tracing
from errand.kit.config import Settings, get_settings
from errand.kit.core import Core
from errand.kit.db import Database
from errand.kit.tasks import Periodic
from errand.runtime.inprocess import InProcessRunner, TaskRunner
from errand.sandbox import notify as sandbox_notify
from errand.sandbox.app import build_sandbox_app

if TYPE_CHECKING:
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


class DialectsFirst:
    """``errand serve``'s ASGI app: an HTTP request under a dialect's prefixes goes straight to that
    dialect's app (first match, in the root router's order), wrapped in :class:`ServerTiming` and
    :class:`HeadAsGet` as the root app would; everything else (the root's own paths, the sandbox,
    the docs' assets, the lifespan) goes to the root app.

    The root FastAPI app would only pass such a request on: its Dialect route matches it first,
    and every exception and error status is answered by the dialect's own handlers, so skipping
    the root's middleware and router changes no answer. The root keeps its Dialect routes, so
    its router still knows every path (``url_path_for``)."""

    def __init__(self, root: ASGIApp, dialects: Sequence[Dialect]) -> None:
        self.root = root
        self.dialects = [(dialect, ServerTiming(HeadAsGet(dialect.app))) for dialect in dialects]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for dialect, app in self.dialects:
                if dialect.matches(scope)[0] is Match.FULL:
                    await app(scope, receive, send)
                    return
        await self.root(scope, receive, send)


class HeadAsGet:
    """HEAD is answered wherever GET is: the GET route runs and only its status and headers are sent.

    Starlette's own routes do this; FastAPI's routes and the dialect apps do not, so the root
    app applies it once for every path (RFC 9110: HEAD is GET without the body). Once the headers
    are out the response is complete, and the app is told the client has gone, so a GET that
    would stream (MCP's event stream) ends too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def receive_until_answered() -> Message:
            if answered:
                return {"type": "http.disconnect"}
            return await receive()

        async def send_headers_only(message: Message) -> None:
            nonlocal answered
            if answered or message["type"] != "http.response.start":
                return
            await send(message)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            answered = True

        inner = {**scope, "method": "GET"}
        await self.app(inner, receive_until_answered, send_headers_only)
        # What the router found, for the access log and metrics outside (:class:`Observe`).
        for key in ("route", "root_path", "fastapi"):
            if key in inner:
                scope[key] = inner[key]


class ServerTiming:
    """Adds ``Server-Timing`` (Errand's own time by phase, :mod:`errand.kit.timing`) to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = timing.begin()

        async def send_with_timing(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = timing.header()
                if value is not None:
                    message["headers"] = [*message.get("headers", ()), (b"server-timing", value)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_timing)
        finally:
            timing.end(token)


class DialectEntry(BaseModel):
    name: str = Field(description="The dialect (one API contract Errand serves).")
    prefixes: list[str] = Field(description="The paths it answers, and everything under them.")
    docs: str | None = Field(description="Its interactive documentation.")
    openapi: str | None = Field(description="Its OpenAPI document (none for MCP, which lists its own tools).")


class Index(BaseModel):
    """What ``/`` answers: where each dialect lives and where it is documented."""

    name: str
    version: str
    docs: str = Field(description="Interactive documentation of every dialect, with a selector.")
    openapi: str = Field(description="This document: the root's own paths.")
    dialects: list[DialectEntry]
    sandbox: str = Field(description="The sandbox marketplace Errand ships for test keys.")


class Health(BaseModel):
    status: str
    version: str
    worker: dict[str, Any] | None = Field(default=None, description="The queue worker's state, when this process "
                                                                     "runs one.")


DIALECTS = [
    DialectEntry(name="execution", prefixes=list(execution_app.PREFIXES), docs=execution_app.DOCS_URL,
                 openapi=execution_app.OPENAPI_URL),
    DialectEntry(name="reservations", prefixes=list(reservations_app.PATHS),
                 docs=reservations_app.DOCS_URL, openapi=reservations_app.OPENAPI_URL),
    DialectEntry(name="mcp", prefixes=list(mcp_app.PREFIXES), docs=None, openapi=None),
    DialectEntry(name="automations", prefixes=list(automations_app.PATHS), docs=automations_app.DOCS_URL,
                 openapi=automations_app.OPENAPI_URL),
]

_ROOT_DESCRIPTION = (
    "Errand serves several API contracts (dialects) from one process; each has its own document, "
    "error shape and authentication:\n\n"
    + "\n".join(f"- **{d.name}**: [{d.openapi}]({d.openapi}), docs at [{d.docs}]({d.docs})"
                for d in DIALECTS if d.openapi)
    + "\n- **mcp**: `/api/v1/mcp` (MCP Streamable HTTP; `tools/list` describes the tools)\n\n"
    "This document covers the root's own paths. Paths under no dialect answer "
    "`{\"error\": {\"code\", \"message\"}}` (`not_found`, `method_not_allowed`)."
)


def add_root_routes(app: FastAPI, health: Any, sandbox: str = "/sandbox/") -> None:
    """``/`` (the index of dialects), ``/healthz``, ``/docs`` with its assets, and the root's own errors.

    ``sandbox`` is where the sandbox's front page is: this server's own, or the configured URL of
    one served alone (``errand sandbox``).
    """

    index_body = Index(name="Errand", version=__version__, docs="/docs", openapi="/openapi.json",
                       dialects=DIALECTS, sandbox=sandbox).model_dump()

    @app.get("/", summary="Index of the dialects", **openapi.describe(Index))
    async def index() -> JSONBody:
        """Where each dialect lives, its interactive docs and its OpenAPI document."""
        return JSONBody(index_body)

    @app.get("/healthz", summary="Liveness", **openapi.describe(Health))
    async def healthz() -> JSONBody:
        """``ok`` while the process serves; with its queue worker's state when it runs one."""
        return JSONBody(health())

    async def docs(_request: Request) -> Any:
        urls = [("Errand (root)", "/openapi.json")]
        urls += [(f"{d.name} dialect", d.openapi) for d in DIALECTS if d.openapi]
        return openapi.swagger_page("Errand API", urls)

    app.add_route("/docs", docs, include_in_schema=False)

    async def sandbox_front_page(_request: Request) -> RedirectResponse:
        # From configuration (a relative Location when embedded): never built from the request's Host.
        return RedirectResponse(sandbox, status_code=308)

    app.add_route("/sandbox", sandbox_front_page, methods=["GET"], include_in_schema=False)
    if sandbox != "/sandbox/":  # the sandbox is served elsewhere: its front page's usual address leads there too
        app.add_route("/sandbox/", sandbox_front_page, methods=["GET"], include_in_schema=False)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        status, code, message, headers = routing_error(request, exc)
        return render_nested(status, code, message, None, headers)

    openapi.install(app, error_model=openapi.NestedError, auth_header=None, security_scheme=None,
                    description=_ROOT_DESCRIPTION, defaults=())


def sandbox_sweep(db: Database, events: sandbox_notify.ProviderEvents) -> Periodic:
    """The sandbox's own periodic work: release lapsed holds, and tell Errand of them as a real provider would.

    Not a core domain's declaration: built here, with what it needs, for whichever process serves the sandbox."""

    async def release_sandbox_holds(_core: object) -> None:
        await sandbox_notify.sweep_holds(db, events)

    return Periodic("release_sandbox_holds", 30, release_sandbox_holds)


def periodic_work(core: Core, *, queue: bool = False, sandbox: bool = True) -> list[Periodic]:
    """The periodic work of a process that runs background work: every domain's declarations
    (``core.tasks.periodic``).

    ``queue`` (a procrastinate worker) leaves out the work the queue's own maintenance task does
    once per tick for all workers (job recovery). ``sandbox`` adds the hold sweep of the sandbox
    in Errand's database; a server whose sandbox is served apart (``errand sandbox``) leaves it
    to that process.
    """
    work = [periodic for periodic in core.tasks.periodic if not (queue and periodic.queue_maintained)]
    if sandbox:
        work.append(sandbox_sweep(core.db, sandbox_notify.ProviderEvents(
            core.settings.provider_events_signing_secret, core.settings.effective_provider_events_url)))
    return work


def build_queue(core: Core) -> "JobQueue":
    """The procrastinate queue on the core's database, now the database's task sender."""
    from errand.runtime.queue import JobQueue

    queue = JobQueue(core)
    core.db.task_sender = queue.send
    return queue


def build_queue_worker(core: Core, *, concurrency: int | None = None,
                       sandbox: bool = True) -> tuple["JobQueue", "QueueWorker"]:
    """The procrastinate queue on the core's database, with a worker that also does this process's periodic work."""
    settings = core.settings
    queue = build_queue(core)
    worker = queue.worker(concurrency=concurrency or settings.job_concurrency,
                          periodic=periodic_work(core, queue=True, sandbox=sandbox),
                          shutdown_seconds=settings.worker_shutdown_seconds)
    return queue, worker


async def run_worker(settings: Settings, *, concurrency: int | None = None) -> None:
    """``errand worker``: consume the procrastinate queue until SIGTERM or SIGINT."""
    logging.configure(settings.log_level, settings.log_format)
    core = build_core(settings)
    if tracing.configure():
        tracing.instrument_engine(core.db.engine)
    queue, worker = build_queue_worker(core, concurrency=concurrency)
    try:
        await worker.run_until_signalled()
    finally:
        await queue.close()
        await core.aclose()
        tracing.shutdown()
        metrics.process_exiting()


def create_app(settings: Settings | None = None) -> Observe:
    """The HTTP app of ``errand serve`` (uvicorn's factory, in each worker process): the root
    FastAPI app, with each dialect's requests handed straight to it (:class:`DialectsFirst`), all
    of it observed (:class:`Observe`: request ids, traces, metrics, the access log).

    The sandbox marketplace is mounted at ``/sandbox`` with its hold sweep, unless
    ``Settings.sandbox_embedded_here`` says it is served apart (``ERRAND_SANDBOX_URL``).
    """
    settings = settings or get_settings()
    logging.configure(settings.log_level, settings.log_format)
    core = build_core(settings)
    if tracing.configure():
        tracing.instrument_engine(core.db.engine)
    mcp = mcp_app.build(core)
    embedded = settings.sandbox_embedded_here
    runner = periodic = queue = queue_worker = None
    if settings.runner == "procrastinate":
        # Jobs go to the queue; without --no-worker this process consumes it as well.
        if settings.worker:
            queue, queue_worker = build_queue_worker(core, sandbox=embedded)
        else:
            queue = build_queue(core)
    elif settings.worker:
        # Committed task calls run on this event loop.
        runner = TaskRunner(core.tasks, core, concurrency=settings.job_concurrency)
        core.db.task_sender = runner.send
        periodic = InProcessRunner(periodic_work(core, sandbox=embedded), core)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if queue is not None:
            await queue.open()
        if queue_worker is not None:
            queue_worker.start()
        if runner is not None and periodic is not None:
            runner.start()
            periodic.start()
        try:
            async with mcp.lifespan():
                yield
        finally:
            if runner is not None and periodic is not None:
                await periodic.stop()
                await runner.stop()
            if queue_worker is not None:
                await queue_worker.stop()
            if queue is not None:
                await queue.close()
            await core.aclose()
            tracing.shutdown()
            metrics.process_exiting()

    app = FastAPI(title="Errand", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  redirect_slashes=False, telemetry=NO_TELEMETRY)
    app.state.core = core
    app.add_middleware(HeadAsGet)
    app.add_middleware(ServerTiming)

    def health() -> dict[str, Any]:
        result: dict[str, Any] = {"status": "ok", "version": __version__}
        if queue_worker is not None and queue is not None:
            result["worker"] = queue.health()
        return result

    add_root_routes(app, health, "/sandbox/" if embedded else settings.effective_sandbox_url.rstrip("/") + "/")
    add_observability_routes(app, Readiness(core, runner, periodic, queue, queue_worker))

    # First match wins: the narrower prefixes go first.
    dialects = [
        Dialect(execution_app.PREFIXES, ReplayShortcut(execution_app.build(core), core)),
        Dialect(mcp_app.PREFIXES, mcp),
        Dialect(reservations_app.PREFIXES, ReplayShortcut(reservations_app.build(core), core)),
        Dialect(automations_app.PREFIXES, automations_app.build(core)),
    ]
    app.router.routes.extend(dialects)
    if embedded:
        app.router.routes.append(Mount("/sandbox", app=build_sandbox_app(core.db, settings.sandbox_faults, settings)))
    app.router.routes.append(Mount(openapi.ASSETS_PATH, app=openapi.assets()))
    return Observe(DialectsFirst(app, dialects), dialects)


def create_sandbox_app(settings: Settings | None = None) -> Starlette:
    """The HTTP app of ``errand sandbox``: the sandbox marketplace alone, on its own database.

    Its API lives under ``/sandbox/`` as when mounted by ``errand serve``, so Errand's adapters
    reach it at ``ERRAND_SANDBOX_URL=http://host:port/sandbox`` unchanged; ``/`` and ``/sandbox``
    redirect to its front page and ``/healthz`` answers ``{"status": "ok"}``. The database is
    ``Settings.effective_sandbox_database_url`` (migrated by the command beforehand); the hold
    sweep runs here every 30 s and tells Errand at ``Settings.effective_provider_events_url``.
    API tokens, event secrets and sealed guest details derive from the same secret key as
    Errand's (``ERRAND_SECRET_KEY`` or the data dir's), so both processes must share it.
    """
    settings = settings or get_settings()
    logging.configure(settings.log_level, settings.log_format)
    crypto.configure(crypto.load_or_create_key(settings.secret_key, settings.data_dir))
    db = Database(settings.effective_sandbox_database_url)
    sandbox = build_sandbox_app(db, settings.sandbox_faults, settings)
    periodic = InProcessRunner([sandbox_sweep(db, sandbox.state.provider_events)])

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        periodic.start()
        try:
            yield
        finally:
            await periodic.stop()
            await db.dispose()

    async def front_page(_request: Request) -> RedirectResponse:
        return RedirectResponse("/sandbox/", status_code=308)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    app = Starlette(lifespan=lifespan, routes=[
        Route("/", front_page, methods=["GET"]),
        Route("/sandbox", front_page, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/sandbox", app=sandbox),
    ])
    app.add_middleware(HeadAsGet)
    return app
