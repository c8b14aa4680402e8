"""Observability of every request, whichever app answers it (docs/observability.md): the
``Observe`` ASGI wrapper (request id, ``traceparent``, route-template metrics, the access log
line), readiness (``/readyz``) and the ``/metrics``, ``/healthz`` and ``/readyz`` routes.
"""

import asyncio
import hmac
import os
import re
import time
from collections.abc import Sequence
from typing import Any

from cachetools import TTLCache

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from errand import __version__
from errand.kit import logging, metrics, migrations, tracing
from errand.kit.config import Settings
from errand.kit.core import Core
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# A method outside these is counted and logged as OTHER: the client chooses it, and label values must stay few.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
access_log = logging.get_logger("errand.access")


def _has_router(app: Any) -> bool:
    """Whether a router is under ``app``'s wrappers (ReplayShortcut, middleware); MCP's app has none."""
    for _ in range(8):
        if getattr(app, "router", None) is not None:
            return True
        app = getattr(app, "app", None)
        if app is None:
            return False
    return False


def _routed_template(scope: Scope, root_path: str) -> str | None:
    """The template of the route the router chose for this request, from what it left in the scope."""
    # FastAPI (0.165+) keeps the route of an included router with its prefix in its own scope entry.
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        path = getattr(fastapi_scope.get("effective_route_context"), "path_format", None)
        if isinstance(path, str):
            return path
    route = scope.get("route")
    if route is None:
        return None
    prefix = scope.get("root_path", "")[len(root_path):]  # what Mounts on the way consumed
    if isinstance(route, Mount):
        return f"{prefix}/{{path}}"
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return prefix + path if isinstance(path, str) else None


class Observe:
    """The outermost layer of ``errand serve``'s app: every HTTP request passes here, whichever app
    answers it (a dialect straight from :class:`DialectsFirst`, or the root).

    Per request: an ``X-Request-Id`` (the caller's when it is 1-128 characters of
    ``[A-Za-z0-9._:-]``, else a new one) and a W3C ``traceparent`` (continuing the caller's) on the
    response; a span named after the route template when tracing is on (:mod:`errand.kit.tracing`);
    log lines naming the request, the trace and, once authenticated, the organization and key
    prefix (:mod:`errand.kit.logging`); after the response, the request counted and timed by route
    template and status (:mod:`errand.kit.metrics`) and one access log line. The route template is
    the one the router matched (``/api/v1/jobs/{job_id}``), never the raw path; ``unmatched`` when
    no route did.
    """

    def __init__(self, app: ASGIApp, dialects: Sequence[Any], *, remembered: int = 4096) -> None:
        self.app = app
        self.dialects = [(dialect, _has_router(dialect.app)) for dialect in dialects]
        # (method, path) -> template of requests the routers answered: a replay that ReplayShortcut
        # answers without routing repeats a request this process routed before.
        self._learned: TTLCache[tuple[str, str], str] = TTLCache(maxsize=remembered, ttl=3600)

    def route_template(self, scope: Scope, root_path: str) -> str:
        method, path = scope["method"], scope["path"]
        template = _routed_template(scope, root_path)
        if template is not None:
            self._learned[(method, path)] = template
            return template
        learned = self._learned.get((method, path))
        if learned is not None:
            return learned
        for dialect, routed in self.dialects:
            if not routed and dialect.matches(scope)[0] is Match.FULL:  # MCP: one endpoint, its prefix
                return next(p for p in dialect.prefixes if path == p or path.startswith(p + "/"))
        return UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        root_path = scope.get("root_path", "")
        request_id = traceparent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
        if request_id is None or not _REQUEST_ID.match(request_id):
            request_id = os.urandom(12).hex()
        trace = tracing.start_request(method, traceparent)
        extra = [(b"x-request-id", request_id.encode()), (b"traceparent", trace.traceparent.encode())]
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        with logging.request_scope(request_id=request_id, trace_id=trace.trace_id):
            try:
                await self.app(scope, receive, send_observed)
            finally:
                seconds = time.perf_counter() - started
                route = self.route_template(scope, root_path)
                metrics.request_answered(method, route, status, seconds)
                tracing.end_request(trace, method, route, status)
                access_log.info("request", method=method, route=route, status=status,
                                duration_ms=round(seconds * 1000, 2))


def _metrics_allowed(settings: Settings, request: Request) -> bool:
    token = settings.metrics_token
    if not token:
        return True
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


class Readiness:
    """What ``/readyz`` checks: the database answers within the timeout, its schema is at Alembic's
    head, and this process's runner (if it runs one) is alive."""

    def __init__(self, core: Core, runner: Any = None, periodic: Any = None, queue: Any = None,
                 queue_worker: Any = None) -> None:
        self.core = core
        self.runner, self.periodic, self.queue, self.queue_worker = runner, periodic, queue, queue_worker
        self._heads: set[str] | None = None

    async def heads(self) -> set[str]:
        if self._heads is None:
            from alembic.script import ScriptDirectory

            config = migrations.alembic_config(self.core.settings.effective_database_url)
            self._heads = set(await asyncio.to_thread(lambda: ScriptDirectory.from_config(config).get_heads()))
        return self._heads

    def runner_check(self) -> dict[str, Any]:
        if self.runner is not None:
            ok = self.runner.healthy() and (self.periodic is None or self.periodic.healthy())
            return {"ok": ok, "runner": "inprocess"}
        if self.queue_worker is not None:
            ok = self.queue_worker.healthy()
            return {"ok": ok, "runner": "procrastinate", "listening": self.queue.listening()}
        return {"ok": True, "runner": None, "detail": "this process runs no background work"}

    async def check(self) -> dict[str, dict[str, Any]]:
        settings = self.core.settings
        checks = await migrations.readiness(self.core.db.read_engine, settings.effective_database_url,
                                            settings.readiness_timeout_seconds, await self.heads())
        checks["runner"] = self.runner_check()
        return checks

    async def database_state(self) -> metrics.DatabaseState:
        """The scrape-time gauges (:func:`errand.kit.metrics.read_database`), or ``up=False``."""
        try:
            async with (asyncio.timeout(self.core.settings.readiness_timeout_seconds),
                        self.core.db.read_engine.connect() as connection):
                return await metrics.read_database(connection, procrastinate=self.core.settings.runner == "procrastinate")
        except Exception as exc:  # noqa: BLE001 - reported as errand_database_up 0
            access_log.warning("metrics_database_unreadable", error=type(exc).__name__)
            return metrics.DatabaseState(up=False)


def add_observability_routes(app: FastAPI, readiness: Readiness) -> None:
    """``/readyz`` and ``/metrics`` on the root app (HEAD too, through :class:`HeadAsGet`)."""
    settings = readiness.core.settings

    @app.get("/readyz", summary="Readiness", responses={503: {"description": "A check failed; see `failed`."}})
    async def readyz() -> JSONResponse:
        """200 when this process can serve: the database answers within
        ``ERRAND_READINESS_TIMEOUT_SECONDS``, its schema is at the newest migration, and the
        process's runner is alive; otherwise 503 with ``Retry-After`` and the checks that failed."""
        checks = await readiness.check()
        failed = [name for name, check in checks.items() if not check["ok"]]
        body = {"status": "unavailable" if failed else "ready", "failed": failed, "checks": checks,
                "version": __version__}
        return JSONResponse(body, status_code=503 if failed else 200,
                            headers={"Retry-After": "5", "Cache-Control": "no-store"} if failed
                            else {"Cache-Control": "no-store"})

    async def prometheus(request: Request) -> Response:
        if not _metrics_allowed(settings, request):
            return JSONResponse({"error": {"code": "unauthorized", "message": "/metrics needs "
                                           "Authorization: Bearer <ERRAND_METRICS_TOKEN>."}},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        state = await readiness.database_state()
        return Response(metrics.render(state), media_type=metrics.CONTENT_TYPE_LATEST,
                        headers={"Cache-Control": "no-store"})

    app.add_route("/metrics", prometheus, methods=["GET"], include_in_schema=False)
