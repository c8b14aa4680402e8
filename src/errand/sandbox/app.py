"""The sandbox marketplace as an HTTP app: what provider adapters call, as they would a real site.

It is a separate origin in spirit: mounted at ``/sandbox`` by the composition root, with
its own error body (:mod:`errand.sandbox.common`) and nothing shared with Errand's
dialects. It serves, per provider under ``/api/{provider_id}/``:

- the partner reservations API of ``sandbox-tables`` (:mod:`errand.sandbox.api.tables`);
- the job API of every provider with one (:mod:`errand.sandbox.api.jobs`);
- the venues feed of every provider, web-only ones included (:mod:`errand.sandbox.api.venues`);

its front page at ``/`` listing providers, sites and venues (:mod:`errand.sandbox.api.index_page`),
the checkout page that the job API's handoff URLs open (:mod:`errand.sandbox.api.checkout_page`),
and under ``/web/{provider_id}/`` the booking web sites of the web-only providers
(:mod:`errand.sandbox.web`, which answer errors as HTML pages). Payments and takeovers are
told to Errand as signed provider events (:mod:`errand.sandbox.notify`). A provider id the
sandbox does not run is a 404. Every request is one unit of work.

The JSON APIs admit only Errand, by a per-provider bearer token
(:func:`errand.sandbox.common.caller_check`); the pages a browser opens are public. Every
answer carries anti-framing headers (:class:`errand.sandbox.common.SecurityHeaders`).
Nothing the sandbox answers or sends depends on the request's ``Host``: absolute URLs start
with ``Settings.effective_sandbox_url`` and provider events go to
``Settings.effective_provider_events_url``; trailing-slash redirects (which Starlette builds
from ``Host``) are off.
"""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from errand.kit import inputs
from errand.kit.boundary import InputBoundary
from errand.kit.config import Settings, get_settings
from errand.kit.db import Database
from errand.kit.errors import DomainError
from errand.sandbox import web
from errand.sandbox.api import checkout_page, index_page, jobs, messages, tables, venues
from errand.sandbox.common import STATUS_BY_KIND, SecurityHeaders, caller_check, error_response
from errand.sandbox.faults import FaultInjector
from errand.sandbox.notify import ProviderEvents


def build_sandbox_app(
    db: Database, faults: Mapping[str, Mapping[str, Any]] | None = None, settings: Settings | None = None
) -> FastAPI:
    """The sandbox over ``db``, misbehaving as ``faults`` says (see :mod:`errand.sandbox.faults`).

    ``settings`` (default: the process's) gives the web sites' hold lifetime, the public URL,
    the API credentials, and how provider events are signed and where they go; pass the
    server's own so that Errand, which verifies them, uses the same secrets. The caller
    mounts it at ``/sandbox``. A malformed ``faults`` raises ValueError here.
    ``app.state.provider_events`` delivers the events; ``app.state.public_url`` roots its links.
    """
    settings = settings or get_settings()
    injector = FaultInjector(faults)
    events = ProviderEvents(settings.provider_events_signing_secret, settings.effective_provider_events_url)
    authenticated = caller_check(settings.sandbox_api_token)
    app = FastAPI(
        redirect_slashes=False,
        title="Errand sandbox marketplace",
        description="Test-mode restaurants, hotels, flights and events that behave like real booking "
        "systems: capacity, holds, idempotency keys, payment pages, login walls, CAPTCHAs and injectable "
        "faults. Times are local to the venue.",
    )
    app.include_router(tables.routes(db, injector, authenticated))
    app.include_router(jobs.routes(db, injector, authenticated))
    app.include_router(venues.routes(injector, authenticated))
    app.include_router(checkout_page.routes(db, events))
    app.include_router(web.routes(db, injector, events, settings.sandbox_hold_ttl_seconds))
    app.include_router(index_page.routes())
    app.include_router(messages.routes(db, settings))
    # The boundary refuses hostile input before any route runs; its answers carry the security headers too.
    app.add_middleware(InputBoundary, reject=lambda status, code, message, _details: error_response(
        status, "invalid" if status == 400 else code, message))
    app.add_middleware(SecurityHeaders)
    app.state.provider_events = events
    app.state.public_url = settings.effective_sandbox_url.rstrip("/")

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        if web.is_web(request):
            return web.error_page(request, STATUS_BY_KIND.get(exc.kind, 500), exc.code, exc.message)
        details = exc.details if isinstance(exc.details, dict) else {}
        return error_response(STATUS_BY_KIND.get(exc.kind, 500), exc.code, exc.message, details.get("nearest"),
                              exc.retry_after, suggestions=details.get("suggestions"))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid", inputs.summarize(inputs.issues(exc.errors()), limit=10))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid")
        if web.is_web(request):
            response = web.error_page(request, exc.status_code, code, str(exc.detail))
        else:
            response = error_response(exc.status_code, code, str(exc.detail))
        response.headers.update(exc.headers or {})  # a 405's Allow
        return response

    return app
